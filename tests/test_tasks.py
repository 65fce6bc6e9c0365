"""The task table (omni.tasks): training, the pipeline, input checks and the command line all read it, so a
task added there (r2i, an image of a referenced subject) works everywhere at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omni.cli import build_parser, main
from omni.conditioning.masks import sample_task_mask
from omni.tasks import INPUTS, OFFERED, TASKS, TRAINED, get_task, output_suffix, tasks_taking

# The command-line flag of every input a task can take.
FLAGS = {
    "image": "--image",
    "last_image": "--last-image",
    "key_frames": "--keyframe",
    "references": "--reference",
    "audio": "--audio",
    "video": "--video",
    "start": "--start",
    "trajectory": "--trajectory",
    "camera": "--camera",
}


@pytest.mark.parametrize("name", TRAINED)
def test_training_draws_each_stream_with_its_clean_rule(name):
    mask = sample_task_mask(name, 5, 9, 0.25, 0.1, torch.Generator().manual_seed(0))
    drawn = {"video": mask.video, "audio": mask.audio}
    if mask.image is not None:
        drawn["reference" if "reference" in TASKS[name].streams else "image"] = mask.image
    streams = {stream: m for stream, m in drawn.items() if m is not None}
    assert set(streams) == set(TASKS[name].streams)
    for stream, rule in TASKS[name].streams.items():
        clean = streams[stream].tolist()
        expected = {
            "none": [False] * len(clean),
            "all": [True] * len(clean),
            "first": [True] + [False] * (len(clean) - 1),
            "first_last": [True] + [False] * (len(clean) - 2) + [True],
        }.get(rule)
        if expected is not None:
            assert clean == expected, (stream, rule)
        else:  # drawn: an extension's context is a prefix; a retake leaves a range to generate in some stream
            assert rule != "context" or (clean[0] and clean == sorted(clean, reverse=True))


def test_every_input_a_task_takes_has_a_flag_and_is_named_in_errors():
    generate = build_parser("generate")._subparsers._group_actions[0].choices["generate"]
    flags = {flag for action in generate._actions for flag in action.option_strings}
    taken = {name for task in OFFERED for name in TASKS[task].takes}
    assert taken == set(INPUTS) and {FLAGS[name] for name in taken} <= flags
    assert generate._option_string_actions["--task"].choices == OFFERED
    assert tasks_taking("image") == ("i2v",) and "r2i" in tasks_taking("references")


def test_unknown_tasks_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown task 'x2y'; choose one of \['t2v'"):
        get_task("x2y")
    with pytest.raises(ValueError, match="unknown training task 'r2i'"):
        get_task("r2i", offered=False)  # planned from its parts, not drawn in training


@pytest.fixture(scope="module")
def reference():
    return np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def test_r2i_is_an_image_conditioned_on_its_references(random_pipeline, reference):
    run = dict(num_inference_steps=2, seed=4, progress=False)
    out = random_pipeline("a red ball", task="r2i", references=[reference], **run)
    assert out.images.shape == (1, 64, 64, 3) and out.frames is None and out.audio is None
    alike = random_pipeline("a red ball", task="t2i", references=[reference], **run)
    plain = random_pipeline("a red ball", task="t2i", **run)
    np.testing.assert_array_equal(out.images, alike.images)  # the same streams, planned from the table
    assert not np.array_equal(out.images, plain.images)  # the reference conditions the image
    assert output_suffix("r2i") == ".png"


def test_r2i_needs_references_and_takes_nothing_else(random_pipeline, reference):
    with pytest.raises(ValueError, match="task 'r2i' needs reference images"):
        random_pipeline("a red ball", task="r2i", progress=False)
    with pytest.raises(ValueError, match=r"task 'r2i' takes no image \(tasks that do: i2v\)"):
        random_pipeline("a red ball", task="r2i", references=[reference], image=reference, progress=False)


@pytest.mark.slow
def test_omni_generate_writes_an_r2i_image(tmp_path, reference, capsys):
    from omni.media import read_image, write_png

    write_png(tmp_path / "subject.png", reference)
    args = ["generate", "--preset", "tiny", "--task", "r2i", "--prompt", "a red ball", "--steps", "1"]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 2
    assert "task 'r2i' needs reference images" in capsys.readouterr().err
    out = tmp_path / "b.png"
    assert main([*args, "--reference", str(tmp_path / "subject.png"), "--out", str(out)]) == 0
    assert read_image(out).shape == (64, 64, 3)
