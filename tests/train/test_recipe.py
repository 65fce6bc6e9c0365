"""scripts/train_toy_model.sh, the recipe of the built-in model: stretches of training on machines that may
be replaced, where a wrong flag or a path that does not lead from one stage to the next wastes hours. Its dry
run prints every command; each is parsed and its recipe loaded here as the CLI would."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from omni.cli import build_parser
from omni.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("toy-images", "toy-lanes", "toy-video", "toy-cool", "toy-motion", "toy-control", "toy-sound")


def recipe_commands(checkout: Path, runs: Path, *args: str) -> list[list[str]]:
    """The dry run's commands, the recipe run from `checkout` (which may hold a shipped model) with runs in
    `runs` and the arguments `args` (default: a 30-minute stretch)."""
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "train_toy_model.sh", checkout / "scripts")
    shutil.copytree(
        ROOT / "omni" / "configs" / "train", checkout / "omni" / "configs" / "train", dirs_exist_ok=True
    )
    venv = checkout / ".venv" / "bin"  # the script reads the stages' step counts with the project's Python
    if not (venv / "python").exists():
        venv.mkdir(parents=True, exist_ok=True)
        (venv / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        (venv / "python").chmod(0o755)
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


def shipped_model(checkout: Path) -> Path:
    (checkout / "omni" / "assets" / "toy").mkdir(parents=True)
    (checkout / "omni" / "assets" / "toy" / "model_index.json").write_text("{}")
    return checkout


def test_a_new_machine_trains_images_video_in_lanes_free_video_cooled_motion_control_sound_then_every_task(
    tmp_path,
):
    runs = tmp_path / "runs"
    (_, images), (_, lanes), (_, free), (_, cool), (_, motion), (_, control), (_, sound), (_, mix) = (
        stages
    ) = train_runs(recipe_commands(tmp_path / "checkout", runs))
    assert images.tasks == {"t2i": 1.0} and images.model.preset == "toy" and images.model.init is None
    assert lanes.tasks == free.tasks == motion.tasks == {"t2v": 1.0}
    assert lanes.data.options["lanes"] == 1.0 and 0 < free.data.options["lanes"] < 1
    assert lanes.model.transformer["signal_input"] and free.model.transformer == lanes.model.transformer
    # the cooling trains what stage 3 did, with a rate that falls to a small fraction by its last step
    assert cool.tasks == free.tasks and cool.data == free.data and cool.timesteps == free.timesteps
    assert (
        cool.optim.schedule == "linear" and cool.optim.lr <= free.optim.lr and cool.optim.min_lr_ratio < 0.1
    )
    # free scenes again with circles and still objects drawn more often than each bounce
    weights = motion.data.options["motion_weights"]
    assert weights["orbit"] > weights["horizontal"] and weights["still"] > weights["vertical"]
    # motion control on keypoint paths and continuing a clip, the sound frozen and not scored
    assert control.control["trajectory"] > 0 and control.data.options["motion_weights"]["trajectory"] > 0
    assert control.tasks.get("extend", 0) > 0 and control.loss_weights["audio"] == 0
    assert control.optim.lr_scale["*experts.audio*"] == 0
    # the sound stage trains the tasks with sound and barely moves the picture stages 2-6 taught
    assert sound.tasks["t2av"] > 0 and sound.tasks.get("v2a", 0) > 0 and "t2v" not in sound.tasks
    assert (
        0 < sound.optim.lr_scale["*experts.video*"] < 1 and sound.model.transformer == lanes.model.transformer
    )
    # each stage starts from the export of the one before, and runs in its own folder under the runs
    for (_, before), (_, after) in zip(stages, stages[1:]):
        assert after.model.preset is None and after.model.init == before.checkpoint.dir + "/export"
    assert [c.checkpoint.dir for _, c in stages] == [str(runs / n) for n in (*STAGES, "toy")]
    assert mix.data.stream == "toyworld" and mix.tasks["t2av"] > 0
    assert all(29.5 <= args.minutes <= 30.0 for args, _ in stages)  # one budget: what is left of it


def test_a_finished_stage_is_not_trained_again(tmp_path):
    runs = tmp_path / "runs"
    (runs / "toy-images" / "step_00002000").mkdir(parents=True)  # toy-images.yaml's step count
    (runs / "toy-lanes" / "step_00000500").mkdir(parents=True)
    stages = train_runs(recipe_commands(shipped_model(tmp_path / "checkout"), runs))
    assert [args.config for args, _ in stages] == [*STAGES[1:], "toy"]
    # a stage begun goes on with the stages, not from the shipped model
    assert stages[0][1].model.init == str(runs / "toy-images" / "export")


def test_a_run_in_progress_resumes_without_restarting_a_stage(tmp_path):
    (tmp_path / "runs" / "toy" / "step_00000250").mkdir(parents=True)
    ((args, video),) = train_runs(recipe_commands(tmp_path / "checkout", tmp_path / "runs"))
    assert video.model.preset == "toy"  # resuming: the checkpoint holds the weights
    assert video.checkpoint.dir == str(tmp_path / "runs" / "toy")


def test_with_no_runs_the_recipe_goes_on_from_the_shipped_model(tmp_path):
    ((args, video),) = train_runs(recipe_commands(shipped_model(tmp_path / "checkout"), tmp_path / "runs"))
    assert video.model.init == "omni/assets/toy" and args.config == "toy"


def test_the_gpu_path_trains_every_stage_from_scratch_with_gpu_batches_then_installs_and_scores(tmp_path):
    out, runs = tmp_path / "model", tmp_path / "runs"
    checkout = shipped_model(tmp_path / "checkout")  # a shipped model does not change the path
    *trains, install, score = recipe_commands(checkout, runs, "--gpu", str(out))
    stages = train_runs(trains)
    assert [args.config for args, _ in stages] == list(STAGES)  # not the open-ended stage
    (_, images), *_, (_, sound) = stages
    assert all(args.no_resume for args, _ in stages)
    assert images.model.preset == "toy" and images.model.init is None and images.data.batch_size >= 128
    for (_, before), (_, after) in zip(stages, stages[1:]):
        assert after.model.init == before.checkpoint.dir + "/export" and after.data.batch_size >= 32
    assert {c.parallel.mixed_precision for _, c in stages} == {"bf16"}
    assert sound.tasks["t2av"] > 0
    assert sum(args.minutes for args, _ in stages) <= 7
    # every stage trains for its minutes, but the cooling's rate falls by step: it keeps its step count
    assert [c.steps for _, c in stages] == [100000, 100000, 100000, 500, 100000, 100000, 100000]
    assert install[0].endswith("python") and install[1:] == [
        "scripts/install_toy_model.py",
        str(runs / "toy-sound-gpu" / "export"),
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


def test_a_budget_that_is_not_a_positive_number_is_refused_before_any_training(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "train_toy_model.sh", tmp_path / "scripts")
    for budget in ("ninety", "0", "-5"):
        run = subprocess.run(
            ["bash", str(tmp_path / "scripts" / "train_toy_model.sh"), budget],
            env={**os.environ, "DRY_RUN": "1", "OMNI_RUNS": str(tmp_path / "runs")},
            capture_output=True,
            text=True,
        )
        assert run.returncode == 2 and not run.stdout
        assert f"MINUTES is a positive number of minutes, got '{budget}'" in run.stderr
