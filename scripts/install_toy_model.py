"""Install a trained toy pipeline folder as the built-in model: transformer weights stored in fp16 (loaded as
fp32), the text encoder referenced (it ships in its own package), the model card (docs/toy-model.md) copied
in, the whole folder checked to stay under 20 MB and each file under 16 MB.

    .venv/bin/python scripts/install_toy_model.py ~/.cache/omni/runs/toy/export omni/assets/toy
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from omni.pipelines.pipeline_omni import OmniPipeline

LIMIT_BYTES = 20 * 2**20
FILE_LIMIT_BYTES = 16 * 2**20
CARD = Path(__file__).resolve().parents[1] / "docs" / "toy-model.md"


def main(source: str, target: str) -> None:
    pipe = OmniPipeline.from_pretrained(Path(source).expanduser())
    torch.nn.Module.to(pipe.transformer, torch.float16)  # stored half precision, loaded as fp32
    target_path = Path(target)
    tmp = target_path.with_name(f".tmp-{target_path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    if CARD.is_file():
        shutil.copy(CARD, tmp / "README.md")
    sizes = [p.stat().st_size for p in tmp.rglob("*") if p.is_file()]
    size, largest = sum(sizes), max(sizes)
    if size > LIMIT_BYTES or largest > FILE_LIMIT_BYTES:
        shutil.rmtree(tmp)
        raise SystemExit(
            f"the model folder would be {size / 2**20:.1f} MB (largest file {largest / 2**20:.1f} MB), "
            "over the 20 MB (16 MB a file) the repository allows"
        )
    shutil.rmtree(target_path, ignore_errors=True)
    tmp.rename(target_path)
    print(f"installed {source} as {target_path} ({size / 2**20:.1f} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="trained pipeline folder (e.g. the trainer's export)")
    parser.add_argument("target", help="where the built-in model lives (omni/assets/toy)")
    args = parser.parse_args()
    main(args.source, args.target)
