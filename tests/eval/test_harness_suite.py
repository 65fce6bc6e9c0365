"""Benchmark suites: the shipped ones load, bad ones fail with errors that name the item and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omni.config import ConfigError
from omni.eval.harness.suite import load_suite, suite_from_dict
from omni.media import read_audio, read_image, read_video
from omni.toyworld import canonical_caption
from omni.toyworld.suites import make_suite_inputs, toyworld_suite

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITES = REPO_ROOT / "suites"


def item(**fields) -> dict:
    return {"id": "a", "task": "t2av", "prompt": "a red ball"} | fields


def test_toyworld_suite_prompts_are_the_canonical_captions_of_its_ground_truth():
    suite = load_suite(SUITES / "toyworld.yaml")
    assert len(suite.items) == 24
    motions = set()
    for entry in suite.items:
        scene = entry.scene_spec()
        assert entry.prompt == canonical_caption(scene)
        assert entry.request().audio and entry.request().seconds == scene.duration_seconds
        motions.update(o.motion for o in scene.objects)
    assert {"still", "horizontal", "vertical", "diagonal", "orbit"} <= motions


def test_toyworld_suite_file_is_what_its_script_writes():
    assert suite_from_dict(toyworld_suite(24, 0)) == load_suite(SUITES / "toyworld.yaml")


def test_workflow_suite_covers_every_workflow_and_its_inputs_are_made_by_the_script(tmp_path):
    shutil.copy(SUITES / "workflows.yaml", tmp_path / "workflows.yaml")
    paths = make_suite_inputs(tmp_path / "inputs")
    suite = load_suite(tmp_path / "workflows.yaml")
    assert {i.task for i in suite.items} == {"t2av", "t2v", "i2v", "a2v", "v2a", "t2i", "t2a"}
    multi_shot = [i for i in suite.items if i.shots]
    assert multi_shot and len(multi_shot[0].prompts) == 2
    assert {suite.resolve(i.input_path) for i in suite.items if i.input_path} == set(paths)
    assert read_image(paths[0]).shape == (64, 64, 3)
    assert read_audio(paths[1])[0].shape[-1] == 33000
    clip = read_video(paths[2])
    assert clip.has_video and not clip.has_audio


def test_defaults_fill_items_and_requests_follow_the_task():
    suite = suite_from_dict(
        {
            "name": "s",
            "defaults": {"seconds": 2.0, "fps": 24, "size": "80x48", "seed": 7},
            "items": [item(), item(id="still", task="t2i"), item(id="sound", task="t2a", seed=3)],
        }
    )
    video, still, sound = suite.items
    assert (video.seconds, video.fps, video.height_width, video.seed) == (2.0, 24.0, (48, 80), 7)
    assert video.request().audio and video.output_suffix == ".mp4"
    assert still.request().seconds is None and still.request().width == 80 and still.output_suffix == ".png"
    assert sound.request().width is None and sound.seed == 3 and sound.output_suffix == ".wav"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (item(colour="red"), r"items\[0\] \('a'\): unknown key\(s\) \['colour'\]"),
        (item(task="x2y"), r"items\[0\] \('a'\)\.task: 'x2y' is not allowed"),
        (item(task="i2v"), r"'i2v' needs its image input \(key 'image'\)"),
        (item(image="k.png"), r"task 't2av' takes no image input"),
        (item(shots=["one", "two"]), "give either prompt or shots, not both"),
        (item(task="t2a", prompt=None, shots=["one"]), "shots are for tasks"),
        (item(id="a b"), "id must be letters"),
        (item(size="big"), "size: must be N or WxH"),
        (item(seconds=-1.0), "seconds must be positive"),
        (item(scene={"objects": []}), "scene: a scene needs at least one object"),
    ],
)
def test_bad_items_are_refused_by_name(bad, message):
    with pytest.raises(ConfigError, match=message):
        suite_from_dict({"name": "s", "items": [bad]})


def test_duplicate_ids_and_unknown_top_level_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="id 'a' is used twice"):
        suite_from_dict({"name": "s", "items": [item(), item()]})
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\nitem: []\n")
    with pytest.raises(ConfigError, match=r"suite.yaml: .*unknown key\(s\) \['item'\]"):
        load_suite(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_suite(Path(tmp_path / "none.yaml"))


def test_outputs_are_found_whatever_the_suffix_case_and_the_rest_is_listed(tmp_path):
    from omni.eval.harness.score import find_outputs

    suite = suite_from_dict(
        {"name": "s", "items": [item(id="a"), item(id="b"), item(id="c", task="t2i"), item(id="d")]}
    )
    for name in ("a.mp4", "a.MP4", "b.Mov", "c.PNG", "c.mp4", "notes.txt", "run.json", ".hidden"):
        (tmp_path / name).write_bytes(b"")
    outputs, unmatched = find_outputs(tmp_path, suite)
    assert {k: p.name for k, p in outputs.items()} == {"a": "a.mp4", "b": "b.Mov", "c": "c.PNG"}
    assert unmatched == ["c.mp4", "notes.txt"]  # an image item's mp4 is no output of it
