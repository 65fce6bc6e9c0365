"""Training recipes that extend one another with `base:`."""

from pathlib import Path

import pytest

from omni.config import ConfigError
from omni.train.config import load_train_config

TRAIN_CONFIGS = Path(__file__).resolve().parents[2] / "omni" / "configs" / "train"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_recipe_extends_its_base_section_by_section(tmp_path):
    path = write(
        tmp_path / "child.yaml",
        "base: toy\n"
        "steps: 7\n"
        "tasks: {t2v: 1.0}\n"  # a mapping value replaces the base's whole mapping
        "optim: {lr: 2.0e-4}\n"  # a section merges key by key
        "model: {transformer: {signal_input: true}}\n",  # model.transformer is a value: replaced whole
    )
    base, child = load_train_config("toy"), load_train_config(path)
    assert child.steps == 7 and child.tasks == {"t2v": 1.0}
    assert child.optim.lr == 2.0e-4
    assert child.optim.betas == base.optim.betas and child.optim.lr_scale == base.optim.lr_scale
    assert child.model.preset == base.model.preset and child.model.transformer == {"signal_input": True}
    assert child.checkpoint == base.checkpoint and child.data == base.data


def test_a_chain_of_bases_applies_nearest_last_and_overrides_go_over_all(tmp_path):
    write(tmp_path / "a.yaml", "base: toy\nsteps: 10\noptim: {lr: 1.0e-4, warmup_steps: 5}\n")
    write(tmp_path / "b.yaml", "base: a.yaml\nsteps: 20\n")
    path = write(tmp_path / "c.yaml", "base: b.yaml\noptim: {warmup_steps: 9}\n")
    config = load_train_config(path, {"optim.lr": 3.0e-4})
    assert config.steps == 20 and config.optim.warmup_steps == 9 and config.optim.lr == 3.0e-4


def test_the_shipped_stages_extend_the_every_task_recipe():
    lanes, video, sound = (load_train_config(n) for n in ("toy-lanes", "toy-video", "toy-sound"))
    toy = load_train_config("toy")
    assert video.model == lanes.model == sound.model == toy.model
    assert video.timesteps == lanes.timesteps and video.data.options["lanes"] == 0.5
    assert (lanes.steps, video.steps, sound.steps) == (2250, 1000, 100)
    assert len({c.checkpoint.dir for c in (lanes, video, sound, toy)}) == 4
    cool = load_train_config("toy-cool")
    assert cool.tasks == video.tasks and cool.data == video.data and cool.optim.schedule == "linear"
    motion, control = load_train_config("toy-motion"), load_train_config("toy-control")
    assert motion.model == control.model == toy.model and motion.timesteps == video.timesteps
    assert control.data.options["motion_weights"] == {
        **motion.data.options["motion_weights"],
        "trajectory": 2,
    }
    for name in (
        "toy-images",
        "toy-lanes",
        "toy-video",
        "toy-cool",
        "toy-motion",
        "toy-control",
        "toy-sound",
    ):
        assert "\nbase: " in (TRAIN_CONFIGS / f"{name}.yaml").read_text()


@pytest.mark.parametrize(
    "files, message",
    [
        ({"x.yaml": "base: x.yaml\n"}, r"makes a cycle \(x.yaml -> x.yaml\)"),
        ({"x.yaml": "base: y.yaml\n", "y.yaml": "base: x.yaml\n"}, r"cycle \(x.yaml -> y.yaml -> x.yaml\)"),
        ({"x.yaml": "base: missing.yaml\n"}, r"base 'missing.yaml' is not a file"),
        (
            {"x.yaml": "base: no-such-recipe\n"},
            r"base 'no-such-recipe' is not a config: choose one of \[.*'toy'",
        ),
        ({"x.yaml": "base: [toy]\n"}, r"base must name a config or a .yaml path, got \['toy'\]"),
        ({"x.yaml": "base: toy\nstepz: 3\n"}, r"unknown key\(s\) \['stepz'\]"),
    ],
)
def test_a_bad_base_is_refused_with_the_files_named(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=message):
        load_train_config(tmp_path / "x.yaml")
