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
from omni.eval.toyworld.metrics import match_events
from omni.pipelines.pipeline_omni import OmniPipeline

MATCH_SECONDS = 0.025
PATHS = ("vocoder (true mel)", "audio VAE + vocoder")
FIRST_SEED = 20_000


@torch.no_grad()
def main(model: str, clips: int) -> None:
    pipe = OmniPipeline.from_pretrained(model)
    found = {name: [0, 0, []] for name in PATHS}  # found, at the right pitch, onset errors (ms)
    total = 0
    for seed in range(FIRST_SEED, FIRST_SEED + clips):
        clip = render(sample_scene(seed))
        truth = detect_beeps(clip.audio, clip.sample_rate)
        total += len(truth)
        samples = clip.audio.shape[-1]
        true_mel = pipe.mel(torch.from_numpy(clip.audio)[None, None])
        outputs = {  # the pipeline's own paths: mel -> vocoder, and encode_audio -> decode_audio
            PATHS[0]: pipe.vocoder(true_mel)[0, 0, :samples].numpy(),
            PATHS[1]: pipe.decode_audio(pipe.encode_audio(clip.audio[None]), samples)[0, 0],
        }
        for name, audio in outputs.items():
            detected = detect_beeps(audio, clip.sample_rate)
            matching = match_events([b.time for b in truth], [d.time for d in detected], MATCH_SECONDS)
            found[name][0] += len(matching.pairs)
            found[name][1] += sum(
                truth[r].color is not None and detected[d].color == truth[r].color for r, d in matching.pairs
            )
            found[name][2].extend(1000 * np.abs(matching.errors))
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
