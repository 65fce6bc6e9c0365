"""Distributed training pieces on the CPU with gloo and 2 processes, compared with one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.slow  # torchrun on two processes


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "results.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "tests/train/distributed_checks.py",
        str(out),
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())


def test_ulysses_attention_equals_plain_attention(results):
    assert all(error < 1e-5 for error in results["ulysses_attention"].values()), results["ulysses_attention"]


def test_sequence_parallel_model_equals_one_process(results):
    r = results["sequence_parallel_model"]
    assert r["forward"] < 1e-5 and r["grads"] < 1e-5, r


def test_fsdp_step_equals_one_process_step(results):
    assert results["fsdp_step"]["params_after_step"] < 1e-6, results["fsdp_step"]
