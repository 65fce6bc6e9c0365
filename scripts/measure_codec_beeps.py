"""How many toy-world beeps survive the audio codecs, at the right time and pitch.

Renders held-out toy clips (seeds 20000 + i), detects their beeps with the evaluation's weights-free
detector, then detects beeps again after the vocoder alone (true mel in) and after audio VAE + vocoder, and
counts the true beeps found within 25 ms and read as the right colour (pitch).

    python scripts/measure_codec_beeps.py checkpoints/toy-codecs [--clips 24]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from omni.data.toyworld import render, sample_scene
from omni.eval.toyworld.audio import detect_beeps
from omni.pipelines.pipeline_omni import OmniPipeline

MATCH_SECONDS = 0.025
FIRST_SEED = 20_000


@torch.no_grad()
def main(model: str, clips: int) -> None:
    pipe = OmniPipeline.from_pretrained(model)
    paths = {"vocoder (true mel)": [], "audio VAE + vocoder": []}
    found = {name: [0, 0, []] for name in paths}  # found, right colour, onset errors
    total = 0
    for seed in range(FIRST_SEED, FIRST_SEED + clips):
        clip = render(sample_scene(seed))
        truth = detect_beeps(clip.audio, clip.sample_rate)
        total += len(truth)
        mel = pipe.mel(torch.from_numpy(clip.audio)[None, None])
        mel = mel[:, :, : 1 + 4 * ((mel.shape[2] - 1) // 4)]
        through_vae = pipe.audio_vae.decode(pipe.audio_vae.encode(mel).latent_dist.mode()).sample
        for name, spec in (("vocoder (true mel)", mel), ("audio VAE + vocoder", through_vae)):
            detected = detect_beeps(pipe.vocoder(spec).reshape(-1).numpy(), clip.sample_rate)
            for beep in truth:  # each detected beep matches at most one true beep
                near = [d for d in detected if abs(d.time - beep.time) < MATCH_SECONDS]
                if near:
                    best = min(near, key=lambda d: abs(d.time - beep.time))
                    detected.remove(best)
                    found[name][0] += 1
                    found[name][1] += best.color is not None and best.color == beep.color
                    found[name][2].append(1000 * abs(best.time - beep.time))
    print(f"{clips} held-out clips, {total} beeps")
    for name, (hits, right, errors) in found.items():
        onset = f"{np.median(errors):.1f} ms" if errors else "n/a"
        print(f"{name:22s} found {hits}/{total}, right pitch {right}/{total}, onset error median {onset}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", help="pipeline folder with the audio VAE and vocoder (e.g. omni codecs' output)"
    )
    parser.add_argument("--clips", type=int, default=24)
    args = parser.parse_args()
    main(args.model, args.clips)
