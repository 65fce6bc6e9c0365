"""scripts/gpu_check.sh: its dry run takes every step on tiny shapes on the CPU and writes every table."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dry_run_writes_every_table(tmp_path):
    done = subprocess.run(
        ["scripts/gpu_check.sh", str(tmp_path), "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "gpu-check.md").read_text()
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections == [
        "## GPU tests",
        "## Attention, non-causal (bf16)",
        "## Attention with key padding (bf16)",
        "## Training: tokens/s and MFU",
        "## Generation: a denoising step against Wan and LTX-2",
        "## Generation: an audio token against a video token",
    ]
    assert "failed with exit code" not in report and "stopped at its" not in report
    tables = {
        "| tests |": 1,
        "| tokens | head dim | key padding | backend | fwd ms | fwd TFLOP/s | fwd vs best other |": 2,
        "| preset | params | device | precision | batch | tokens/step | step ms | tokens/s | TFLOP/s | MFU |": 1,
        "| tokens | of them audio | Wan ms | omni ms | omni / Wan |": 2,
    }
    for head, count in tables.items():
        assert sum(line.startswith(head) for line in report.splitlines()) == count, head
    assert "| 192 | 64 | last 1/8 | triton |" in report  # the padded run's rows
    assert "LTX-2 ms" in report and "audio token / video token" in report


def test_an_unknown_option_is_named(tmp_path):
    done = subprocess.run(
        ["scripts/gpu_check.sh", str(tmp_path), "--dryrun"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2 and "unknown option '--dryrun'" in done.stderr
