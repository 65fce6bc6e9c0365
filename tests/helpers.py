"""Helpers shared by tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

TINY_TRANSFORMER = dict(
    num_attention_heads=2,
    attention_head_dim=16,
    in_channels=4,
    out_channels=4,
    audio_in_channels=8,
    text_dim=16,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter with small random values (zero-initialised gates would hide bugs)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    return model


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
