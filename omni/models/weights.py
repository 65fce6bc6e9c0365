"""Weight files: safetensors only. Pickle-based formats are refused, since loading them can run arbitrary code."""

from __future__ import annotations

from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class UnsafeWeightsError(ValueError):
    """A folder or file holds pickle-format weights."""


def check_safetensors_only(folder: str | Path) -> None:
    """Raise when `folder` (recursively) holds pickle-format weights, naming them and how to convert."""
    folder = Path(folder)
    if folder.is_file():
        found = [folder] if folder.suffix in PICKLE_SUFFIXES else []
    else:
        found = sorted(p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if found:
        names = ", ".join(str(p) for p in found[:5])
        raise UnsafeWeightsError(
            f"refusing pickle-format weights ({names}): loading them can execute arbitrary code. Convert them "
            "once in a trusted environment, e.g. `safetensors.torch.save_file(torch.load(f, weights_only=True), "
            "'model.safetensors')`, and remove the original."
        )


def weights_sha256(model) -> str:
    """sha256 over a model's state dict (names, dtypes, shapes and bytes, in key order): which weights made
    an output, recorded in its content credentials."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
