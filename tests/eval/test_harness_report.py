"""The report compares systems fairly: one axis per metric, the reference marked, players that link the
outputs, and "not meaningful" where an output is noise or silence."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from omni.eval.harness.report import write_report
from omni.eval.harness.score import score_results
from omni.eval.harness.suite import suite_from_dict
from omni.media import write_mp4
from omni.toyworld import render, sample_scene


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """Ground truth as the reference, a system that copies it at half volume, and one that outputs noise
    with a silent track."""
    root = tmp_path_factory.mktemp("report")
    suite = suite_from_dict(
        {"name": "fair", "defaults": {"fps": 16, "size": 64}, "items": [{"id": "ball", "task": "t2av", "prompt": "a ball"}]}
    )  # fmt: skip
    clip = render(sample_scene(0, num_objects=1, motion="vertical"))
    write_mp4(root / "reference" / "ball.mp4", clip.frames, clip.fps, clip.audio, clip.sample_rate)
    write_mp4(root / "quiet" / "ball.mp4", clip.frames, clip.fps, 0.5 * clip.audio, clip.sample_rate)
    noise = np.random.default_rng(0).integers(0, 256, clip.frames.shape, dtype=np.uint8)
    write_mp4(root / "noise" / "ball.mp4", noise, clip.fps, np.zeros_like(clip.audio), clip.sample_rate)
    score_results(root, suite, progress=False)
    return write_report(root, root / "pages" / "report.html")[0]


def chart(html: str, label: str) -> str:
    (svg,) = re.findall(rf'<svg class="chart"[^>]*aria-label="{re.escape(label)}".*?</svg>', html, re.S)
    return svg


def test_noise_and_silence_read_not_meaningful_where_a_metric_needs_a_picture_or_a_sound(report):
    html = report.read_text()
    motion = chart(html, "motion smoothness")
    assert motion.count('class="bar"') == 2 and "not meaningful: noise" in motion
    loudness = chart(html, "integrated loudness")
    assert loudness.count('class="bar"') == 2 and "not meaningful: silence" in loudness
    assert "not meaningful: noise and silence" in chart(html, "AV offset, median |x|")
    summary = html.split("<h2>Metrics</h2>")[0]
    assert summary.count("not meaningful: noise") >= 2  # motion smoothness and flicker, not 0.99 and 0.65


def test_one_axis_per_metric_with_the_reference_and_the_target_marked(report):
    loudness = chart(report.read_text(), "integrated loudness")
    assert 'class="reference"' in loudness and "- - reference" in loudness
    assert 'class="target"' in loudness and "-70 LUFS" in loudness
    widths = [float(w) for w in re.findall(r'class="bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', loudness)]
    # On the shared -70..0 LUFS axis the quieter copy's bar is shorter, and neither fills the chart.
    assert len(widths) == 2 and widths[0] < widths[1] < 230


def test_players_link_each_output_relative_to_the_page(report):
    html = report.read_text()
    sources = re.findall(r'<video controls preload="metadata" src="([^"]+)"', html)
    assert len(sources) == 3
    for source in sources:
        assert not source.startswith(("/", "http")) and (report.parent / unquote(source)).resolve().is_file()
