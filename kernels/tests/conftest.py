"""Kernel tests run on CUDA, or on the CPU through Triton's interpreter.

`TRITON_INTERPRET` is read when triton kernels are defined, so it must be set before `triton` or
`omni_kernels` is imported: on a machine without CUDA, this sets it for a plain `pytest` run.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
