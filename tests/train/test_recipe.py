"""scripts/train_toy_model.sh, the recipe of the built-in model: hours of training that a wrong flag in its
last codec run, or a path that does not lead from one stage to the next, would waste. Its dry run prints
every command; each is parsed and checked here as the CLI would. It runs from a copy in an empty folder,
so the checkpoints of a real run beside the checkout (which the recipe skips) change nothing here."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from omni.cli import build_parser
from omni.pipelines.presets import load_preset
from omni.train.cli import codec_training
from omni.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]


def recipe_commands(checkout: Path, **env: str) -> list[list[str]]:
    """The dry run's commands, the recipe run from `checkout` (a folder with its checkpoints, if any)."""
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "train_toy_model.sh", checkout / "scripts")
    run = subprocess.run(
        ["bash", str(checkout / "scripts" / "train_toy_model.sh")],
        env={**os.environ, "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return [shlex.split(line) for line in run.stdout.splitlines()]


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    return recipe_commands(tmp_path_factory.mktemp("checkout"))


def omni_args(commands, command: str):
    parser = build_parser()
    return [parser.parse_args(c[1:]) for c in commands if c[0].endswith("omni") and c[1] == command]


def test_every_codec_run_is_valid_and_continues_the_one_before(commands):
    runs = omni_args(commands, "codecs")
    assert len(runs) == 10
    previous = None
    for args in runs:
        cfg = codec_training(args)  # the checks `omni codecs` makes before it trains
        load_preset(args.preset, dict(args.preset_overrides))
        if previous is None:
            assert not cfg.video_init  # the warm-up starts from random weights
        else:
            assert cfg.video_init == f"{previous}/stages/vae"
        previous = args.out
    assert previous == "checkpoints/toy-codecs"


def test_the_other_codecs_are_copied_into_every_later_run(commands):
    outs = [a.out for a in omni_args(commands, "codecs")]
    copies = {(c[-2], c[-1]) for c in commands if c[0] == "cp"}
    for before, after in zip(outs, outs[1:]):
        for stage in ("audio_vae", "vocoder"):
            assert (f"{before}/stages/{stage}", f"{after}/stages/") in copies


def test_shards_transformer_and_install_use_what_the_stage_before_wrote(commands):
    codecs = omni_args(commands, "codecs")[-1].out
    (prepare,) = omni_args(commands, "prepare")
    (train,) = omni_args(commands, "train")
    recipe = load_train_config(train.config)
    assert str(prepare.model) == codecs == recipe.model.codecs
    assert str(prepare.out) == recipe.data.shards
    install = next(c for c in commands if c[-2:] == [f"{recipe.checkpoint.dir}/export", "omni/assets/toy"])
    assert install[1].endswith("install_toy_model.py")


def test_device_and_workers_reach_every_stage_that_takes_them(tmp_path):
    commands = recipe_commands(tmp_path, DEVICE="cuda", WORKERS="8")
    runs = omni_args(commands, "codecs")
    assert all(a.device == "cuda" and a.workers == 8 for a in runs)
    assert all(a.device == "cuda" for a in omni_args(commands, "prepare"))


def test_a_rerun_skips_finished_codec_runs_and_continues_the_last_one(tmp_path):
    for run in ("toy-codecs-warmup", "toy-codecs-9f"):  # finished: their reports are written
        (tmp_path / "checkpoints" / run).mkdir(parents=True)
        (tmp_path / "checkpoints" / run / "codecs_report.json").write_text("{}")
    (tmp_path / "checkpoints" / "toy-codecs-33f" / "stages").mkdir(parents=True)  # stopped midway
    runs = omni_args(recipe_commands(tmp_path), "codecs")
    assert [a.out for a in runs][:2] == ["checkpoints/toy-codecs-33f", "checkpoints/toy-codecs-single"]
    assert runs[0].video_init == "checkpoints/toy-codecs-9f/stages/vae"
