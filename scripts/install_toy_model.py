"""Install a trained toy pipeline folder as the built-in model: weights stored in fp16 (loaded as fp32), the
text encoder referenced (it ships in its own package), the whole folder checked to stay under 20 MB.

    python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy [--codecs DIR]

--codecs DIR takes the video VAE, audio VAE and vocoder from another pipeline folder, e.g. one whose
decoder and vocoder were fine-tuned after the transformer was trained: copy `stages/audio_vae` of the
codecs the data was encoded with into `NEW/stages/`, then `omni codecs --out NEW --video-init OLD/stages/vae
--video-train decoder --vocoder-init OLD/stages/vocoder ...`. The transformer is bound to its codecs'
latent space, so their encoders and mel settings must be identical (anything else is refused), and the
latents keep the source's normalisation.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from omni.pipelines.pipeline_omni import OmniPipeline

LIMIT_BYTES = 20 * 2**20
ENCODER_PREFIXES = {"vae": ("encoder.", "quant_conv."), "audio_vae": ("encoder.",)}


def check_same_latent_space(pipe: OmniPipeline, codecs: OmniPipeline, source: str) -> None:
    """Refuse codecs whose encoders differ from the ones the transformer's training data was encoded with."""
    if pipe.mel_config != codecs.mel_config:
        raise SystemExit(
            f"--codecs {source}: its mel spectrogram differs ({codecs.mel_config} vs {pipe.mel_config})"
        )
    for name, prefixes in ENCODER_PREFIXES.items():
        ours, theirs = getattr(pipe, name).state_dict(), getattr(codecs, name).state_dict()
        for key, value in ours.items():
            if not key.startswith(prefixes):
                continue
            if key not in theirs or theirs[key].shape != value.shape or not torch.equal(value, theirs[key]):
                raise SystemExit(f"--codecs {source}: its {name} encodes differently ({key} differs)")


def main(source: str, target: str, codecs: str | None = None) -> None:
    pipe = OmniPipeline.from_pretrained(source)
    if codecs:
        other = OmniPipeline.from_pretrained(codecs)
        check_same_latent_space(pipe, other, codecs)
        # the transformer's latents were normalised with the source's statistics (audio ones live in the
        # pipeline's config, which stays); the encoders being the same, only a re-measurement could differ
        cfg = pipe.vae.config
        other.vae.register_to_config(latents_mean=cfg.latents_mean, latents_std=cfg.latents_std)
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
