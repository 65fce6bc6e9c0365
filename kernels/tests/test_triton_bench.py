"""The benchmark entry points: the CLI wiring, the CPU message, and a smoke run that checks our output."""

import pytest

pytest.importorskip("triton", reason="triton is not installed")

from omni_kernels import bench  # noqa: E402
from omni_kernels.testing import DEVICE, kernels_cannot_run_reason  # noqa: E402

pytestmark = pytest.mark.skipif(
    kernels_cannot_run_reason() is not None, reason=str(kernels_cannot_run_reason())
)


def test_omni_cli_mounts_the_attention_benchmark():
    from omni.cli import build_parser

    args = build_parser().parse_args(
        ["bench", "attention", "--seqlens", "1024", "--head-dims", "128", "--rope"]
    )
    assert args.run is bench.run
    assert (args.seqlens, args.head_dims, args.rope, args.dtype) == ([1024], [128], True, "bf16")


def test_list_shows_what_each_backend_supports():
    lines = []
    bench.list_backends(print_fn=lines.append)
    triton_row = next(line for line in lines if line.startswith("triton "))
    assert "bf16,fp16,fp32" in triton_row and "yes   yes" in triton_row


@pytest.mark.skipif(DEVICE.type == "cuda", reason="checks what the benchmark says on a machine without a GPU")
def test_without_a_gpu_it_says_it_needs_one():
    lines = []
    assert bench.run_attention_benchmark(print_fn=lines.append) is None
    assert "needs a CUDA GPU" in lines[0]
    assert bench.main(["--seqlens", "4096"]) == 1


@pytest.mark.slow
@pytest.mark.skipif(
    DEVICE.type == "cuda", reason="the smoke mode is the CPU path; on a GPU the full report runs"
)
def test_smoke_run_reports_both_backends_and_agreement():
    lines = []
    results = bench.run_attention_benchmark(smoke=True, rope=True, print_fn=lines.append)
    assert [r.backend for r in results] == ["triton", "sdpa"]
    assert all(r.fwd_ms > 0 and r.bwd_ms > 0 for r in results)
    error = float(results[1].note.rsplit(" ", 1)[-1])
    assert error < 2e-2  # bf16 outputs of O(1): triton and sdpa agree to a few bf16 ulps
    assert any(line.startswith("rms_norm_rope") for line in lines)


def test_attention_flops_count_matmuls():
    forward, backward = bench.attention_flops(batch=2, heads=3, lq=5, lk=7, head_dim=11)
    assert forward == 4 * 2 * 3 * 5 * 7 * 11 and backward == 2.5 * forward
