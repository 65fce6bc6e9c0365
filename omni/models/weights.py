"""Weight files: safetensors only. Pickle-based formats are refused, since loading them can run arbitrary code."""

from __future__ import annotations

from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Weight dtypes a model component is loaded from; an integer or boolean tensor would be cast silently.
WEIGHT_DTYPES = ("F32", "F16", "BF16", "F64")


class UnsafeWeightsError(ValueError):
    """A folder or file holds pickle-format weights."""


class WeightsError(ValueError):
    """A safetensors file that is truncated, corrupt, or does not fit the model it is loaded into."""


def check_safetensors_only(folder: str | Path) -> None:
    """Raise when `folder` (recursively) holds pickle-format weights, naming them and how to convert."""
    folder = Path(folder)
    if folder.is_file():
        found = [folder] if folder.suffix.lower() in PICKLE_SUFFIXES else []
    else:
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if found:
        names = ", ".join(str(p) for p in found[:5])
        raise UnsafeWeightsError(
            f"refusing pickle-format weights ({names}): loading them can execute arbitrary code. Convert them "
            "once in a trusted environment, e.g. `safetensors.torch.save_file(torch.load(f, weights_only=True), "
            "'model.safetensors')`, and remove the original."
        )


def check_finite_weights(module, where: str) -> None:
    """Raise `WeightsError` naming the first parameter or buffer of `module` that holds NaN or infinity.

    One reduction per floating-point tensor, so checking a loaded model costs about one read of its weights.
    """
    import torch

    for kind, tensors in (("parameter", module.named_parameters()), ("buffer", module.named_buffers())):
        for name, tensor in tensors:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise WeightsError(
                    f"{where}: {kind} {name!r} holds {bad} NaN or infinite value(s) of {tensor.numel()}; "
                    "the weights are damaged or were saved from a diverged run"
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


def read_safetensors_header(path: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """{tensor name: (shape, dtype)} of a safetensors file, after checking that the file holds every byte its
    header promises (a truncated download is named as such, not as a deserialisation failure)."""
    import json
    import struct

    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise WeightsError(f"{path}: not a safetensors file ({size} bytes, no header)")
        (header_size,) = struct.unpack("<Q", prefix)
        if header_size > min(size - 8, 100_000_000):
            raise WeightsError(
                f"{path}: not a safetensors file or truncated (header of {header_size} bytes in a {size}-byte file)"
            )
        try:
            header = json.loads(f.read(header_size))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise WeightsError(f"{path}: corrupt safetensors header ({error})") from error
        except RecursionError as error:
            raise WeightsError(f"{path}: corrupt safetensors header (nested too deeply)") from error
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: corrupt safetensors header (not a mapping)")
    tensors, end = {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, dtype, (_, stop) = tuple(info["shape"]), info["dtype"], info["data_offsets"]
        except (KeyError, TypeError, ValueError) as error:
            raise WeightsError(f"{path}: corrupt entry for tensor {name!r} in the header") from error
        tensors[name] = (shape, dtype)
        end = max(end, stop)
    if 8 + header_size + end > size:
        raise WeightsError(
            f"{path}: truncated: the header promises {end:,} bytes of tensor data but the file holds "
            f"{size - 8 - header_size:,} (re-download or re-export it)"
        )
    return tensors


def check_weights_fit(folder: str | Path, model_class, config: dict) -> None:
    """Raise `WeightsError` naming the first tensor whose shape differs from what `model_class(**config)`
    expects, or that the model lacks / the file lacks, before any weight is loaded."""
    import torch

    folder = Path(folder)
    found: dict[str, tuple[tuple[int, ...], str]] = {}
    files = sorted(folder.glob("*.safetensors"))
    for path in files:
        for name, (shape, dtype) in read_safetensors_header(path).items():
            if dtype not in WEIGHT_DTYPES:
                raise WeightsError(
                    f"{path}: tensor {name!r} is {dtype}; model weights must be one of {list(WEIGHT_DTYPES)}"
                )
            found[name] = (shape, path.name)
    if not files:
        raise WeightsError(f"{folder}: no .safetensors weights next to its config (is the folder complete?)")
    with torch.device("meta"):
        model = model_class.from_config(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    for name, shape in expected.items():
        if name not in found:
            raise WeightsError(f"{folder}: the weights lack tensor {name!r} (expected shape {shape})")
        if found[name][0] != shape:
            raise WeightsError(
                f"{folder / found[name][1]}: tensor {name!r} has shape {found[name][0]} but the model's config "
                f"expects {shape}"
            )
