"""The benchmark report renders in a real browser: headless Chromium, driven by its command-line flags.

Checks: the page logs no console errors and loads nothing that fails, every SVG chart and every frame strip
has a visible, non-zero size once laid out, every metric chart has one bar per system, every video output has
a player that loads it, and a screenshot of it is not blank.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omni.eval.harness.report import write_report
from omni.eval.harness.score import score_results
from omni.eval.harness.suite import suite_from_dict
from omni.media import write_mp4, write_png
from omni.toyworld import render, sample_scene

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not found (scripts/test.sh installs Debian's chromium package)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)
# Collects failed loads and script errors from the start, then measures the laid-out page once it loaded.
PROBE_HEAD = """<script>window.__errors = [];
addEventListener("error", e => __errors.push(String(e.message || (e.target && (e.target.src || e.target.href)))), true);
</script>"""
PROBE_BODY = """<script>addEventListener("load", () => {
  const box = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return {w: r.width, h: r.height, shown: s.display !== "none" && s.visibility === "visible" && s.opacity !== "0"}; };
  document.body.setAttribute("data-probe", JSON.stringify({
    svgs: [...document.querySelectorAll("svg")].map(box),
    bars: document.querySelectorAll("svg.chart rect.bar").length,
    charts: [...document.querySelectorAll("svg.chart")].filter(c => c.querySelector("rect.bar")).map(c => ({
      bars: [...c.querySelectorAll("rect.bar")].filter(r => r.getBoundingClientRect().width > 0).length})),
    players: [...document.querySelectorAll("video, audio")].map(m => ({
      kind: m.tagName, error: m.error && m.error.code, ready: m.readyState})),
    images: [...document.images].map(i => ({...box(i), loaded: i.complete && i.naturalWidth > 0})),
    errors: __errors}));
});</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A scored results folder with two systems (one missing an output, one broken file) and its report."""
    root = tmp_path_factory.mktemp("report")
    items = [{"id": f"clip{i}", "task": "t2av", "prompt": "a ball"} for i in range(3)]
    items.append({"id": "still", "task": "t2i", "prompt": "a box"})
    suite = suite_from_dict({"name": "browser", "defaults": {"fps": 16, "size": 64}, "items": items})
    for i in range(3):
        clip = render(sample_scene(i, num_objects=1, motion="vertical"))
        write_mp4(root / "alpha" / f"clip{i}.mp4", clip.frames, clip.fps, clip.audio, clip.sample_rate)
        if i < 2:
            write_mp4(
                root / "beta" / f"clip{i}.mp4",
                clip.frames[:, ::-1],
                clip.fps,
                0.5 * clip.audio,
                clip.sample_rate,
            )
        if i == 0:
            write_png(root / "alpha" / "still.png", clip.frames[0])
    (root / "beta" / "still.png").write_bytes(b"\x89PNG broken")
    score_results(root, suite, progress=False)
    return write_report(root)[0]


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_loads_without_errors_and_every_chart_is_visible(report, tmp_path):
    probed = report.with_name("probed.html")  # beside the report: its players link the outputs relatively
    text = report.read_text()
    probed.write_text(
        text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_BODY + "</body>")
    )
    result = chromium(probed, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    match = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert match, "the page never finished loading"
    probe = json.loads(html.unescape(match[1]))
    assert probe["errors"] == []
    assert len(probe["svgs"]) == text.count("<svg") >= 20
    assert all(s["w"] > 0 and s["h"] > 0 and s["shown"] for s in probe["svgs"]), probe["svgs"]
    assert probe["bars"] >= 10
    systems = 2
    assert all(c["bars"] <= systems for c in probe["charts"]), probe["charts"]
    assert sum(c["bars"] == systems for c in probe["charts"]) >= 10  # one bar per system on a shared axis
    assert [p["kind"] for p in probe["players"]] == ["VIDEO"] * 5  # alpha's 3 clips and beta's 2
    assert all(p["error"] is None and p["ready"] >= 1 for p in probe["players"]), probe["players"]
    assert len(probe["images"]) == text.count("data:image/png;base64,") >= 5
    assert all(i["loaded"] and i["w"] > 0 and i["h"] > 0 and i["shown"] for i in probe["images"])


def test_screenshot_of_the_report_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # text, tables and charts, not an empty page
    assert np.mean(pixels.min(axis=2) < 200) > 0.02
    first_system = np.all(np.abs(pixels - (0x33, 0x66, 0xCC)) < 12, axis=2)  # the first system's bar colour
    assert first_system.sum() > 500
