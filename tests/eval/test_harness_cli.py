"""`omni bench run | score | report` end to end: a tiny random model, a dropped-in system, a ground-truth one."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
import yaml

from omni.cli import main
from omni.media import read_video, write_mp4
from omni.toyworld import ObjectSpec, SceneSpec, canonical_caption, render

# Wall hits at 0.37, 1.11 and 1.86 s: events further apart than the sync search range, so their render's
# audio-video offset is unambiguous.
SCENE = SceneSpec(
    objects=(ObjectSpec("circle", "red", "small", "horizontal", position=(32.0, 32.0), velocity=(70.0, 0.0)),)
)
ITEMS = [
    {"id": "ball", "task": "t2av", "prompt": canonical_caption(SCENE), "scene": SCENE.to_dict()},
    {"id": "two_shots", "task": "t2av", "shots": ["a red ball", "a blue box"], "seconds": 2.0},
    {"id": "still", "task": "t2i", "prompt": "a green triangle"},
    {"id": "sound", "task": "t2a", "prompt": "beeps"},
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A suite, omni's (tiny, random) outputs for it, a hosted system's partial drop and the ground truth."""
    root = tmp_path_factory.mktemp("bench")
    suite = root / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {"name": "mini", "defaults": {"seconds": 33 / 16, "fps": 16, "size": 64}, "items": ITEMS}
        )
    )
    out = root / "results"
    run = ["bench", "run", "--suite", str(suite), "--preset", "tiny", "--device", "cpu", "--steps", "2"]
    assert main([*run, "--out", str(out / "omni"), "--limit", "3"]) == 0
    assert main([*run, "--out", str(out / "omni")]) == 0  # resumes: only the 4th item is new
    assert (
        main(["bench", "run", "--suite", str(suite), "--ground-truth", "--out", str(out / "reference")]) == 0
    )
    hosted = out / "hosted"
    hosted.mkdir()
    shutil.copy(out / "omni" / "ball.mp4", hosted / "ball.mp4")
    (hosted / "two_shots.mp4").write_bytes((out / "omni" / "two_shots.mp4").read_bytes()[:1500])  # truncated
    (hosted / "readme.txt").write_text("not an output")
    return suite, out


@pytest.fixture(scope="module")
def scored(results):
    """The results folder once `omni bench score` has run on it (the suite is found through run.json)."""
    _, out = results
    assert main(["bench", "score", str(out)]) == 0
    return out


def test_run_writes_every_item_resumably_with_timings(results):
    _, out = results
    run = json.loads((out / "omni" / "run.json").read_text())
    assert sorted(run["items"]) == ["ball", "sound", "still", "two_shots"]
    assert run["system"]["random_weights"] and run["suite"] == "mini"
    assert all(entry["seconds"] > 0 and "denoise" in entry["timings"] for entry in run["items"].values())
    before = (out / "omni" / "ball.mp4").stat().st_mtime_ns
    assert (
        main(
            [
                "bench",
                "run",
                "--suite",
                str(results[0]),
                "--preset",
                "tiny",
                "--device",
                "cpu",
                "--out",
                str(out / "omni"),
            ]
        )
        == 0
    )
    assert (out / "omni" / "ball.mp4").stat().st_mtime_ns == before  # complete outputs are never redone


def test_multi_shot_item_is_its_shots_end_to_end(results):
    _, out = results
    clip = read_video(out / "omni" / "two_shots.mp4")
    assert clip.num_frames == 32 and clip.audio.shape[-1] == 32000  # 2 x 1 s at 16 fps / 16 kHz
    assert json.loads((out / "omni" / "run.json").read_text())["items"]["two_shots"]["shots"] == 2


def test_score_records_missing_broken_and_unmatched_files_and_scores_the_rest(scored):
    out = scored
    scores = json.loads((out / "scores.json").read_text())
    hosted = scores["systems"]["hosted"]
    assert {k: v["status"] for k, v in hosted["items"].items()} == {
        "ball": "ok",
        "two_shots": "broken",
        "still": "missing",
        "sound": "missing",
    }
    assert "two_shots.mp4" in hosted["items"]["two_shots"]["error"]
    assert hosted["unmatched_files"] == ["readme.txt"]
    assert hosted["summary"]["scored"] == 1 and hosted["summary"]["broken"] == 1
    omni = scores["systems"]["omni"]
    assert omni["summary"]["scored"] == 4 and omni["summary"]["compliant"] == 1.0
    assert omni["items"]["sound"]["metrics"]["loudness_lufs"] is not None
    assert omni["items"]["ball"]["metrics"]["generation_seconds"] > 0
    assert omni["items"]["still"]["metrics"]["credentials"] == "none"


def test_ground_truth_reads_as_perfect_on_the_toy_world_metrics(scored):
    out = scored
    scores = json.loads((out / "scores.json").read_text())
    ball = scores["systems"]["reference"]["items"]["ball"]["metrics"]
    assert ball["toy_color_accuracy"] == ball["toy_shape_accuracy"] == ball["toy_motion_accuracy"] == 1.0
    assert ball["toy_av_sync_ms"] < 10
    assert ball["av_determined"] and abs(ball["av_offset_ms"]) < 1000 / 16
    assert ball["compliant"]


def test_report_is_one_self_contained_page_with_csv_and_json(scored):
    out = scored
    assert main(["bench", "report", str(out), "--out", str(out / "report.html")]) == 0
    html = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html and "<script" not in html
    assert html.count("<svg") >= 10 and html.count("data:image/png;base64,") >= 4
    assert "two_shots" in html and "broken" in html and "readme.txt" in html
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert len(rows) == 3 * len(ITEMS)
    assert {r["status"] for r in rows if r["system"] == "hosted"} == {"ok", "broken", "missing"}
    summary = json.loads((out / "report.json").read_text())
    assert set(summary["systems"]) == {"hosted", "omni", "reference"}
    assert summary["metrics"]["av_offset_ms"]["unit"] == "ms"


def test_run_refuses_a_suite_whose_inputs_are_missing(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {"name": "s", "items": [{"id": "k", "task": "i2v", "prompt": "x", "image": "key.png"}]}
        )
    )
    status = main(
        [
            "bench",
            "run",
            "--suite",
            str(suite),
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert status == 2
    assert "make_suite_inputs.py" in capsys.readouterr().err


def test_a_system_dropped_in_at_another_resolution_fails_compliance(results, tmp_path):
    suite, _ = results
    out = tmp_path / "results"
    clip = render(SCENE)
    frames = np.repeat(np.repeat(clip.frames, 2, axis=1), 2, axis=2)  # 128 x 128 instead of 64
    write_mp4(out / "big" / "ball.mp4", frames, clip.fps, clip.audio, clip.sample_rate)
    assert main(["bench", "score", str(out), "--suite", str(suite)]) == 0
    metrics = json.loads((out / "scores.json").read_text())["systems"]["big"]["items"]["ball"]["metrics"]
    assert metrics["size_ok"] is False and metrics["duration_ok"] and not metrics["compliant"]
