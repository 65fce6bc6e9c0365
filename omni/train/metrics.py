"""Peak FLOP/s for MFU: datasheet figures on GPUs, a measured matmul on CPUs."""

from __future__ import annotations

import functools
import os
import time

import torch

# Dense bf16 tensor-core peaks (datasheet, SXM parts).
GPU_PEAK_BF16 = {
    "H200": 989.4e12,
    "H100": 989.4e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "4090": 165e12,
}


@functools.cache
def measured_matmul_flops(
    device: str = "cpu", size: int = 1024, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """FLOP/s of a square matmul on this machine (fp32: the CPU 'peak' MFU is quoted against)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def peak_flops(device: torch.device) -> float | None:
    """Peak FLOP/s for `device` (env OMNI_PEAK_TFLOPS overrides); None for an unknown GPU."""
    if "OMNI_PEAK_TFLOPS" in os.environ:
        return float(os.environ["OMNI_PEAK_TFLOPS"]) * 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((peak for key, peak in GPU_PEAK_BF16.items() if key in name), None)
    return measured_matmul_flops()


def cpu_bf16_slowdown(size: int = 256, repeats: int = 10) -> float:
    """How many times longer a bf16 matmul takes than an fp32 one on this CPU (fastest of `repeats` each,
    which a busy machine disturbs least). About 1 where the CPU has bf16 units (AVX512-BF16, AMX); tens to
    hundreds where it emulates them (an AVX2-only CPU: BENCHMARKS.md, training throughput)."""

    def fastest(dtype: torch.dtype) -> float:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return min(times)

    return fastest(torch.bfloat16) / fastest(torch.float32)
