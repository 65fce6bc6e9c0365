"""Install a trained toy pipeline folder as the built-in model: weights stored in fp16 (loaded as fp32), the
text encoder referenced (it ships in its own package), the whole folder checked to stay under 20 MB.

    python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy [--codecs DIR]

--codecs DIR takes the video VAE, audio VAE and vocoder from another pipeline folder, e.g. one whose
decoders and vocoder were fine-tuned after the transformer was trained (`omni codecs --video-train decoder
--vocoder-init ...`). The transformer is bound to its codecs' latent space, so their encoders and latent
statistics must be identical; anything else is refused.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from omni.pipelines.pipeline_omni import OmniPipeline

LIMIT_BYTES = 20 * 2**20
ENCODER_PREFIXES = {"vae": ("encoder.", "quant_conv."), "audio_vae": ("encoder.",)}


def _same(a: list[float] | None, b: list[float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))


def check_same_latent_space(pipe: OmniPipeline, codecs: OmniPipeline, source: str) -> None:
    for name, prefixes in ENCODER_PREFIXES.items():
        ours, theirs = getattr(pipe, name).state_dict(), getattr(codecs, name).state_dict()
        for key, value in ours.items():
            if key.startswith(prefixes) and not torch.equal(value, theirs[key]):
                raise SystemExit(f"--codecs {source}: its {name} encodes differently ({key} differs)")
    # statistics re-measured with the same encoders differ only by float summation order
    for kind, ours, theirs, keys in (
        ("video", pipe.vae.config, codecs.vae.config, ("latents_mean", "latents_std")),
        ("audio", pipe.config, codecs.config, ("audio_latents_mean", "audio_latents_std")),
    ):
        for key in keys:
            if not _same(ours[key], theirs[key]):
                raise SystemExit(f"--codecs {source}: its {kind} latent statistics ({key}) differ")


def main(source: str, target: str, codecs: str | None = None) -> None:
    pipe = OmniPipeline.from_pretrained(source)
    if codecs:
        other = OmniPipeline.from_pretrained(codecs)
        check_same_latent_space(pipe, other, codecs)
        pipe.vae, pipe.audio_vae, pipe.vocoder = other.vae, other.audio_vae, other.vocoder
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="trained pipeline folder (e.g. the trainer's export)")
    parser.add_argument("target", help="where the built-in model lives (omni/assets/toy)")
    parser.add_argument("--codecs", help="pipeline folder to take the VAEs and the vocoder from")
    args = parser.parse_args()
    main(args.source, args.target, args.codecs)
