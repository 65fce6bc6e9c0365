"""Install a trained toy pipeline folder as the built-in model: weights stored in fp16 (loaded as fp32), the
text encoder referenced (it ships in its own package), the whole folder checked to stay under 20 MB.

    python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from omni.pipelines.pipeline_omni import OmniPipeline

LIMIT_BYTES = 20 * 2**20


def main(source: str, target: str) -> None:
    pipe = OmniPipeline.from_pretrained(source)
    for name in ("transformer", "vae", "audio_vae", "vocoder"):
        torch.nn.Module.to(getattr(pipe, name), torch.float16)  # stored half precision, loaded as fp32
    target_path = Path(target)
    tmp = target_path.with_name(f".tmp-{target_path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    card = target_path / "README.md"
    if card.is_file():
        shutil.copy(card, tmp / "README.md")
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    if size > LIMIT_BYTES:
        shutil.rmtree(tmp)
        raise SystemExit(
            f"the model folder would be {size / 2**20:.1f} MB, over the 20 MB the repository allows"
        )
    shutil.rmtree(target_path, ignore_errors=True)
    tmp.rename(target_path)
    print(f"installed {source} as {target_path} ({size / 2**20:.1f} MB)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
