"""What the kernel tests share: the device they run on and the skip that applies when they cannot run."""

import os

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

import omni_kernels  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

if DEVICE.type == "cpu" and not omni_kernels.INTERPRET:
    reason = (
        "no CUDA device and omni_kernels was loaded without TRITON_INTERPRET=1 "
        f"(TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')!r} now); export TRITON_INTERPRET=1 before running"
    )
    pytest.skip(reason, allow_module_level=True)

requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
