"""Multi-shot projects: one film, subject memory, only edited shots regenerate, clear errors."""

import numpy as np
import pytest
import yaml

from omni import media
from omni.apps.project import Shot, ShotDefaults, ShotResult, assemble_film, load_project
from omni.cli import main
from omni.config import ConfigError

SHOTS = {
    "defaults": {"fps": 16, "size": 64, "seed": 1, "steps": 2},
    "shots": [
        {"id": "hall", "prompt": "a small red ball bouncing in a grey room", "seconds": 1.0},
        {"id": "kitchen", "prompt": "the red ball in a sand room", "seconds": 1.0, "transition": "crossfade"},
        {"id": "garden", "prompt": "the red ball keeps bouncing", "seconds": 0.5, "transition": "continue"},
    ],
}


def write(tmp_path, data):
    path = tmp_path / "shots.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def project(tmp_path, data, capsys):
    out = tmp_path / "film.mp4"
    assert (
        main(
            ["project", str(write(tmp_path, data)), "--out", str(out), "--preset", "tiny", "--device", "cpu"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    return out, {
        line.split(":")[0].strip(): "cached" in line for line in printed.splitlines() if line.startswith("  ")
    }


def test_a_project_is_one_film_and_reruns_only_what_changed(tmp_path, capsys):
    out, cached = project(tmp_path, SHOTS, capsys)
    clip = media.read_video(out)
    assert clip.num_frames == 16 + 16 + 8 - 4  # the crossfade overlaps 0.25 s
    assert clip.audio.shape[-1] == round(clip.num_frames / 16 * 16000)
    assert cached == {"hall": False, "kitchen": False, "garden": False}

    _, cached = project(tmp_path, SHOTS, capsys)
    assert all(cached.values())

    edited = yaml.safe_load(yaml.safe_dump(SHOTS))
    edited["shots"][1]["seed"] = 5
    _, cached = project(tmp_path, edited, capsys)
    # The kitchen changed; the garden continues the kitchen's new frames, so it follows; the hall is untouched.
    assert cached == {"hall": True, "kitchen": False, "garden": False}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["shots"][1].update(promt="x"),
            r"shots\[1\] \(id 'kitchen'\): unknown key\(s\) \['promt'\]",
        ),
        (
            lambda d: d["shots"][2].update(seconds="long"),
            r"shots\[2\] \(id 'garden'\)\.seconds: expected a number",
        ),
        (lambda d: d["shots"][0].update(transition="continue"), "first shot cannot continue"),
        (lambda d: d["shots"][1].update(transition="wipe"), "'wipe' is not allowed"),
        (lambda d: d["shots"][1].update(id="hall"), "shot ids must be unique"),
        (lambda d: d.update(shots=[]), "non-empty list of shots"),
    ],
)
def test_malformed_shot_lists_name_the_shot_and_field(tmp_path, change, message):
    data = yaml.safe_load(yaml.safe_dump(SHOTS))
    change(data)
    with pytest.raises(ConfigError, match=message):
        load_project(write(tmp_path, data))


def test_joins_are_continuous_in_sound():
    rate = 16000
    tone = lambda n: (0.5 * np.sin(np.arange(n) / rate * 2 * np.pi * 300)).astype(np.float32)[None]  # noqa: E731
    shots = [
        (Shot("a", "x"), ShotResult(np.zeros((16, 8, 8, 3), np.uint8), tone(16000), False)),
        (Shot("b", "y"), ShotResult(np.zeros((16, 8, 8, 3), np.uint8), -tone(16000), False)),
    ]
    frames, audio = assemble_film(shots, ShotDefaults(), rate)
    assert len(frames) == 32 and audio.shape == (1, 32000)
    # Faded through the cut: no step larger than the tone's own slope (0.059); a hard cut would jump ~0.5.
    assert np.abs(np.diff(audio[0, 15800:16200])).max() < 0.065


class CountingPipeline:
    """Stands in for a pipeline: black frames and silence, counting how often a shot is generated."""

    sample_rate = 16000

    def __init__(self):
        self.calls = 0

    def __call__(self, prompt, task, seconds, fps, height, width, **kwargs):
        from types import SimpleNamespace

        self.calls += 1
        frames = round(seconds * fps)
        return SimpleNamespace(
            frames=[np.zeros((frames, height, width, 3), np.uint8)],
            audio=[np.zeros((1, round(seconds * self.sample_rate)), np.float32)],
        )


def test_regenerating_a_shot_keeps_the_cache_of_a_shot_whose_id_extends_it(tmp_path):
    from omni.apps.project import ProjectRunner

    data = {
        "defaults": {"fps": 8, "size": 16},
        "memory": False,
        "shots": [
            {"id": "a-b", "prompt": "one", "seconds": 0.5},
            {"id": "a", "prompt": "two", "seconds": 0.5},
        ],
    }
    pipe = CountingPipeline()
    for seed in (1, 2, 3):
        data["shots"][1]["seed"] = seed  # shot `a` changes every run; shot `a-b` never does
        ProjectRunner(
            pipe, load_project(write(tmp_path, data)), tmp_path, tmp_path / "cache", "m", False
        ).run()
    assert pipe.calls == 1 + 3
    assert len(list((tmp_path / "cache").iterdir())) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["defaults"].update(crossfade_seconds=float("inf")), r"defaults.crossfade_seconds: inf"),
        (lambda d: d["defaults"].update(fps=float("nan")), r"defaults.fps"),
        (lambda d: d["defaults"].update(seed=-1), r"defaults.seed: -1 is not in \[0, 2\*\*63 - 1\]"),
        (lambda d: d["defaults"].update(size=0), r"defaults.size"),
        (lambda d: d["shots"][0].update(seconds=float("inf")), r"shots\[0\] \(id 'hall'\).seconds: inf"),
        (lambda d: d["shots"][0].update(seed=2**70), r"shots\[0\] \(id 'hall'\).seed"),
    ],
)
def test_every_number_of_a_project_is_checked_before_the_first_shot(tmp_path, change, message):
    data = yaml.safe_load(yaml.safe_dump(SHOTS))
    change(data)
    with pytest.raises(ConfigError, match=message):
        load_project(write(tmp_path, data))


def test_shot_lists_are_bounded_and_checked_in_linear_time(tmp_path):
    import time

    from omni.apps.project import MAX_SHOTS

    shot = {"prompt": "a ball", "seconds": 1.0}
    many = {"shots": [{"id": f"s{i}", **shot} for i in range(MAX_SHOTS)]}
    start = time.perf_counter()
    assert len(load_project(write(tmp_path, many)).shots) == MAX_SHOTS
    assert time.perf_counter() - start < 10
    many["shots"].append({"id": "one too many", **shot})
    with pytest.raises(ConfigError, match=f"at most {MAX_SHOTS}"):
        load_project(write(tmp_path, many))


def test_a_deeply_nested_project_is_a_config_error(tmp_path):
    path = tmp_path / "shots.yaml"
    path.write_text("shots: " + "[" * 50_000)
    with pytest.raises(ConfigError, match="shots.yaml: (nested too deeply|not valid YAML .*nesting depth)"):
        load_project(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["shots"][1].update(camera="spin"),
            r"shots\[1\] \(id 'kitchen'\).camera: 'spin' is neither",
        ),
        (
            lambda d: d["shots"][1].update(image="missing.png"),
            r"shots\[1\] \(id 'kitchen'\).image: file not found",
        ),
        (lambda d: d["shots"][0].update(references=["gone.png"]), r"references\[0\]: file not found"),
        (lambda d: d.update(subjects={"ball": 3}), "subjects.ball: expected a list of image paths"),
    ],
)
def test_a_shots_files_are_checked_before_the_first_shot(tmp_path, change, message):
    data = yaml.safe_load(yaml.safe_dump(SHOTS))
    change(data)
    with pytest.raises(ConfigError, match=message):
        load_project(write(tmp_path, data))
