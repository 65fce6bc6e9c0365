"""The built-in model's recipe helpers: installing a trained toy pipeline folder as the shipped model."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from omni.pipelines.pipeline_omni import OmniPipeline

LIMIT_BYTES = 20 * 2**20  # the whole shipped model folder
FILE_LIMIT_BYTES = 16 * 2**20  # each file in it


def install_model(source: str | Path, target: str | Path, card: str | Path | None = None) -> int:
    """Install the trained pipeline folder `source` as `target` (e.g. omni/assets/toy) and return its size in
    bytes: transformer weights stored in fp16 (loaded as fp32), the text encoder referenced (it ships in its
    own package), the model card `card` copied in as README.md. A folder over 20 MB (16 MB a file) is refused
    with a ValueError and nothing is written."""
    pipe = OmniPipeline.from_pretrained(Path(source).expanduser())
    torch.nn.Module.to(pipe.transformer, torch.float16)  # stored half precision, loaded as fp32
    target = Path(target)
    tmp = target.with_name(f".tmp-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    if card is not None and Path(card).is_file():
        shutil.copy(card, tmp / "README.md")
    sizes = [p.stat().st_size for p in tmp.rglob("*") if p.is_file()]
    size, largest = sum(sizes), max(sizes)
    if size > LIMIT_BYTES or largest > FILE_LIMIT_BYTES:
        shutil.rmtree(tmp)
        raise ValueError(
            f"the model folder would be {size / 2**20:.1f} MB (largest file {largest / 2**20:.1f} MB), "
            f"over the {LIMIT_BYTES / 2**20:g} MB ({FILE_LIMIT_BYTES / 2**20:g} MB a file) the repository allows"
        )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return size
