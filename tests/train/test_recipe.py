"""scripts/train_toy_model.sh, the recipe of the built-in model: stretches of training on machines that may
be replaced, where a wrong flag or a path that does not lead from one stage to the next wastes hours. Its dry
run prints every command; each is parsed and its recipe loaded here as the CLI would."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from omni.cli import build_parser
from omni.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]


def recipe_commands(checkout: Path, runs: Path, minutes: str = "30") -> list[list[str]]:
    """The dry run's commands, the recipe run from `checkout` (which may hold a shipped model) with runs in `runs`."""
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "train_toy_model.sh", checkout / "scripts")
    run = subprocess.run(
        ["bash", str(checkout / "scripts" / "train_toy_model.sh"), minutes],
        env={**os.environ, "DRY_RUN": "1", "OMNI_RUNS": str(runs)},
        capture_output=True,
        text=True,
        check=True,
    )
    return [shlex.split(line) for line in run.stdout.splitlines()]


def train_runs(commands):
    """(parsed arguments, loaded recipe) of every `omni train` command."""
    parser = build_parser()
    runs = []
    for command in commands:
        assert command[0].endswith("omni") and command[1] == "train", command
        args = parser.parse_args(command[1:])
        runs.append((args, load_train_config(args.config, dict(args.overrides))))
    return runs


def test_a_new_machine_trains_images_then_every_task_from_their_export(tmp_path):
    (first, images), (second, video) = train_runs(recipe_commands(tmp_path / "checkout", tmp_path / "runs"))
    assert images.tasks == {"t2i": 1.0} and images.checkpoint.dir == str(tmp_path / "runs" / "toy-images")
    assert video.model.init == str(tmp_path / "runs" / "toy-images" / "export") and video.model.preset is None
    assert video.checkpoint.dir == str(tmp_path / "runs" / "toy")
    assert first.minutes == second.minutes == 30.0
    assert video.data.stream == "toyworld" and video.tasks["t2av"] > 0


def test_a_run_in_progress_resumes_without_restarting_a_stage(tmp_path):
    (tmp_path / "runs" / "toy" / "step_00000250").mkdir(parents=True)
    ((args, video),) = train_runs(recipe_commands(tmp_path / "checkout", tmp_path / "runs"))
    assert video.model.preset == "toy"  # resuming: the checkpoint holds the weights
    assert video.checkpoint.dir == str(tmp_path / "runs" / "toy")


def test_with_no_runs_the_recipe_goes_on_from_the_shipped_model(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "omni" / "assets" / "toy").mkdir(parents=True)
    (checkout / "omni" / "assets" / "toy" / "model_index.json").write_text("{}")
    ((args, video),) = train_runs(recipe_commands(checkout, tmp_path / "runs"))
    assert video.model.init == "omni/assets/toy"
