"""Peak FLOP/s for MFU: datasheet figures on GPUs, a measured matmul on CPUs."""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass

import torch

# Dense bf16 tensor-core peaks (datasheets), by a part of the device name; the longest matching key wins, so
# "H100 PCIe" is told from the SXM part that torch names "H100 80GB HBM3".
GPU_PEAK_BF16 = {
    "H200": 989.4e12,
    "H100": 989.4e12,
    "H100 PCIe": 756.0e12,
    "H100 NVL": 835.0e12,
    "GH200": 989.4e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "4090": 165e12,
}


@dataclass
class PeakFlops:
    """The FLOP/s that MFU is quoted against, and where the figure comes from.

    A step that computes faster than the peak raises it (a measured peak is a lower bound: the machine may
    have been busy while it was measured), so MFU is at most 100% by construction."""

    flops: float
    source: str

    def mfu(self, achieved_flops: float) -> float:
        """`achieved_flops` (FLOP/s) as a fraction of the peak, in [0, 1]."""
        if achieved_flops > self.flops:
            self.flops = achieved_flops
            if "raised" not in self.source:
                self.source += ", raised to the fastest step"
        return achieved_flops / self.flops


@functools.cache
def _measured_matmul_flops(device: str, dtype: torch.dtype, threads: int, size: int, trials: int) -> float:
    del threads  # part of the cache key: the result holds for the thread count it was measured at
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    a @ b
    sync()
    fastest = math.inf
    for _ in range(trials):
        start = time.perf_counter()
        a @ b
        sync()
        fastest = min(fastest, time.perf_counter() - start)
    return 2 * size**3 / fastest


def measured_matmul_flops(
    device: str = "cpu", dtype: torch.dtype = torch.float32, size: int | None = None, trials: int = 7
) -> float:
    """FLOP/s of the fastest of `trials` square matmuls in `dtype` at this process's thread count: the way a
    run computes, and the trial a busy machine disturbed least. Cached per device, dtype and thread count."""
    if size is None:  # a CPU without bf16 units emulates them, tens of times slower: keep the trial short
        size = 1024 if dtype == torch.float32 or device != "cpu" else 256
    return _measured_matmul_flops(str(device), dtype, torch.get_num_threads(), size, trials)


def gpu_peak_bf16(name: str) -> float | None:
    """The datasheet dense bf16 FLOP/s of the GPU called `name` (torch's device name), None if unknown."""
    keys = sorted((key for key in GPU_PEAK_BF16 if key in name), key=len)
    return GPU_PEAK_BF16[keys[-1]] if keys else None


def peak_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> PeakFlops | None:
    """Peak FLOP/s for `device` running in `dtype` (env OMNI_PEAK_TFLOPS overrides): the datasheet bf16 peak
    on a known GPU, None on an unknown one, a measured matmul on the CPU."""
    if "OMNI_PEAK_TFLOPS" in os.environ:
        return PeakFlops(float(os.environ["OMNI_PEAK_TFLOPS"]) * 1e12, "OMNI_PEAK_TFLOPS")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_bf16(name)
        return None if peak is None else PeakFlops(peak, f"{name} datasheet dense bf16")
    threads = torch.get_num_threads()
    name = str(dtype).removeprefix("torch.")
    return PeakFlops(
        measured_matmul_flops("cpu", dtype),
        f"fastest {name} matmul on this CPU at {threads} thread{'s' if threads > 1 else ''}",
    )


def cpu_bf16_slowdown(size: int = 512, repeats: int = 7) -> float:
    """How many times longer a bf16 matmul takes than an fp32 one on this CPU (fastest of `repeats` each, in
    CPU time: a busy machine that takes the core away in the middle of a run then changes nothing). About 1 where the CPU has bf16 units (AVX512-BF16, AMX); tens to
    hundreds where it emulates them (an AVX2-only CPU: BENCHMARKS.md, training throughput)."""

    def fastest(dtype: torch.dtype) -> float:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        times = []
        for _ in range(repeats):
            start = time.process_time()
            for _ in range(3):  # milliseconds of work, well above the clock's resolution
                a @ b
            times.append(time.process_time() - start)
        return max(min(times), 1e-9)

    return fastest(torch.bfloat16) / fastest(torch.float32)
