"""The best any transformer can score on given codecs: the evaluation suite's true clips, passed through the
codecs (video VAE; audio VAE + vocoder), scored like generated clips by `omni eval toyworld`'s detectors.

    python scripts/measure_codec_ceiling.py checkpoints/toy-codecs [--scenes 12]
"""

from __future__ import annotations

import argparse

import torch

from omni.data.toyworld import render
from omni.eval.toyworld.evaluate import EvalSettings, _mean, suite_scene
from omni.eval.toyworld.metrics import score_clip
from omni.pipelines.pipeline_omni import OmniPipeline

KEYS = (
    "color_accuracy",
    "shape_accuracy",
    "motion_accuracy",
    "av_sync_median_abs_ms",
    "pitch_color_agreement",
)


@torch.no_grad()
def ceiling(pipe: OmniPipeline, scenes: int) -> dict[str, dict[str, float]]:
    """Mean of each metric over `scenes` suite scenes, for the true clips and for them after the codecs."""
    scores = {"true clips": [], "through the codecs": []}
    first = EvalSettings().first_seed
    for seed in range(first, first + scenes):
        scene = suite_scene(seed)
        clip = render(scene)
        frames = pipe.decode_video(pipe.encode_video(clip.frames))[0]
        latents = pipe.encode_audio(clip.audio[None])
        audio = pipe.decode_audio(latents, clip.audio.shape[-1])[0]
        for name, (f, a) in (
            ("true clips", (clip.frames, clip.audio)),
            ("through the codecs", (frames, audio)),
        ):
            scores[name].append(score_clip(f, a, clip.fps, clip.sample_rate, scene))
    return {name: {k: _mean(s[k] for s in rows) for k in KEYS} for name, rows in scores.items()}


def main(model: str, scenes: int) -> None:
    table = ceiling(OmniPipeline.from_pretrained(model), scenes)
    print(f"{scenes} suite scenes (seeds from {EvalSettings().first_seed}); mean per clip")
    print(f"{'':20s}" + "".join(f"{k:>24s}" for k in KEYS))
    for name, values in table.items():
        print(f"{name:20s}" + "".join(f"{values[k]:24.3f}" for k in KEYS))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pipeline folder with the codecs (e.g. omni codecs' output)")
    parser.add_argument("--scenes", type=int, default=12)
    args = parser.parse_args()
    main(args.model, args.scenes)
