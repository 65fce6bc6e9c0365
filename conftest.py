"""Run Triton kernels through the interpreter on machines without CUDA.

`TRITON_INTERPRET` is read when triton kernels are defined, which happens as soon as `omni` is imported (the
attention dispatch registers `omni_kernels`' backend). This root conftest is loaded before every other, so a
plain `pytest` on a CPU machine runs the kernel tests (kernels/tests) on CPU tensors.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
