"""Choosing the model, device and dtype a command runs with."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from omni.models.transformer import cast_keeping_fp32

# The built-in model trained on the toy world ships inside the package.
BUILTIN_MODEL = Path(__file__).resolve().parents[1] / "assets" / "toy"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class LoadedModel:
    pipeline: object
    description: str
    random_weights: bool


def resolve_device(device: str) -> torch.device:
    """`auto` takes a CUDA GPU when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is available (use cpu or auto)")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from error


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on a GPU and float32 on the CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto or one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def load_model(
    model: str | Path | None = None,
    preset: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    attention_backend: str | None = None,
    scheduler: str | None = None,
) -> LoadedModel:
    """Load `model` (an OmniPipeline folder), else the built-in model, else a random-weight `preset` (tiny).

    Random weights are said on stderr, for every caller (the CLI's commands and the Python API alike)."""
    from omni.pipelines.pipeline_omni import OmniPipeline
    from omni.pipelines.presets import SchedulerConfig, build_pipeline, build_scheduler

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if model is not None and preset is not None:
        raise ValueError("give --model (trained weights) or --preset (random weights), not both")
    if model is None and preset is None and (BUILTIN_MODEL / "model_index.json").is_file():
        model = BUILTIN_MODEL
    if model is not None:
        pipe = OmniPipeline.from_pretrained(model)
        description, random_weights = f"model {model}", False
    else:
        pipe = build_pipeline(preset or "tiny")
        description, random_weights = f"random-weight preset {preset or 'tiny'}", True
        reason = "as asked" if preset else "no model given and the built-in model is not installed"
        print(
            f"note: using a {description} ({reason}): its outputs are noise, useful only to check that the "
            "engine runs",
            file=sys.stderr,
        )
    if scheduler is not None:
        shift = getattr(pipe.scheduler.config, "flow_shift", None) or getattr(
            pipe.scheduler.config, "shift", 3.0
        )
        pipe.scheduler = build_scheduler(SchedulerConfig(kind=scheduler, shift=shift))
    pipe.to(torch_device)
    for transformer in (pipe.transformer, pipe.transformer_2):
        if transformer is not None:
            cast_keeping_fp32(transformer, torch_dtype)
            transformer.set_attention_backend(attention_backend)
    return LoadedModel(pipe, description, random_weights)
