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


def recipe_commands(checkout: Path, runs: Path, *args: str) -> list[list[str]]:
    """The dry run's commands, the recipe run from `checkout` (which may hold a shipped model) with runs in
    `runs` and the arguments `args` (default: a 30-minute stretch)."""
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "train_toy_model.sh", checkout / "scripts")
    run = subprocess.run(
        ["bash", str(checkout / "scripts" / "train_toy_model.sh"), *(args or ["30"])],
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


def test_the_gpu_path_trains_both_stages_from_scratch_with_gpu_batches_then_installs_and_scores(tmp_path):
    checkout, out = tmp_path / "checkout", tmp_path / "model"
    (checkout / "omni" / "assets" / "toy").mkdir(parents=True)  # a shipped model does not change the path
    (checkout / "omni" / "assets" / "toy" / "model_index.json").write_text("{}")
    *trains, install, score = recipe_commands(checkout, tmp_path / "runs", "--gpu", str(out))
    (first, images), (second, video) = train_runs(trains)
    assert first.no_resume and second.no_resume
    assert images.tasks == {"t2i": 1.0} and images.model.preset == "toy" and images.data.batch_size >= 128
    assert video.model.init == str(tmp_path / "runs" / "toy-images-gpu" / "export")
    assert video.data.batch_size >= 32 and video.tasks["t2av"] > 0
    assert images.parallel.mixed_precision == video.parallel.mixed_precision == "bf16"
    assert first.minutes + second.minutes <= 7
    assert install[0].endswith("python") and install[1:] == [
        "scripts/install_toy_model.py",
        str(tmp_path / "runs" / "toy-gpu" / "export"),
        str(out),
    ]
    assert score[1:3] == ["eval", "toyworld"] and str(out) in score


def test_the_gpu_path_without_an_output_folder_says_what_it_needs(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "train_toy_model.sh", tmp_path / "scripts")
    run = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "train_toy_model.sh"), "--gpu"],
        env={**os.environ, "DRY_RUN": "1"},
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "usage: scripts/train_toy_model.sh --gpu OUT" in run.stderr
