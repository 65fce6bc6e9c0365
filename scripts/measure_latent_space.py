"""How hard a video VAE's latents are to generate from a caption: what share of their variance the room
colour explains, channel by channel, and how much of each channel's power lies in fine spatial detail.

At sigma 1 a denoiser sees only noise and the caption, so the best it can do is predict what the caption
determines. In the toy world the room colour fills most of every frame, so the share of variance it explains
(R^2 of the per-room mean, fitted on the first half of the clips and scored on the second) bounds how much
the first sampling steps can get right. The transformer's loss weighs latent channels as the pipeline
normalises them, each to unit variance; a channel of small raw spread that carries little of the scene but
fine detail or noise then weighs as much as one that carries the room. The script reports the share under
that normalisation, under one global scale (each channel weighed by its raw variance), and for the frames
themselves, and each channel's share of power above half the spatial Nyquist frequency. The room's mean
keeps its positions, so what all clips share at a position counts as explained: the script also reports
that part alone (the R^2 of the mean clip, which needs no caption). It then splits the
latent positions into those an object covers (any pixel of the frames they encode) and the rest: the share
of positions on objects, the share of the variance the room leaves unexplained that lies there, and the
room's share on each side.

    python scripts/measure_latent_space.py checkpoints/toy-codecs [--clips 400]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from omni.data.toyworld import render, sample_scene
from omni.data.toyworld.render import scene_coverage
from omni.pipelines import inputs
from omni.pipelines.pipeline_omni import OmniPipeline

FIRST_SEED = 50_000_000  # far from the seeds codecs and shards are trained on


def held_out_residuals(x: Tensor, groups: list[str] | None) -> tuple[Tensor, Tensor]:
    """x (N, C, ...): the per-group mean fitted on the first half of the items (the overall mean for a
    group it did not see; for every item when `groups` is None). Returns the second half's squared errors
    against it and squared deviations from its own per-channel mean, both (N - N // 2, C, ...). The mean
    keeps its positions: what every clip shares at a position (the causal first latent frame, say) counts
    as explained, for the None grouping too."""
    if groups is None:
        groups = ["all"] * len(x)
    elif len(set(groups)) < 2:
        raise ValueError(f"need 2 or more groups, got {len(set(groups))}")
    if len(groups) < 4:
        raise ValueError(f"need at least 4 items, got {len(groups)}")
    half = len(groups) // 2
    x = x.double()
    rows = defaultdict(list)
    for i in range(half):
        rows[groups[i]].append(i)
    means = {g: x[idx].mean(0) for g, idx in rows.items()}
    fallback = x[:half].mean(0)
    held = x[half:]
    predicted = torch.stack([means.get(g, fallback) for g in groups[half:]])
    dims = [0, *range(2, x.ndim)]
    return (held - predicted).square(), (held - held.mean(dim=dims, keepdim=True)).square()


def explained_share(x: Tensor, groups: list[str] | None) -> tuple[Tensor, float]:
    """x (N, C, ...): per-channel R^2 of the per-group mean (fitted on the first half of the items, scored
    on the second), and the R^2 of all channels together (each weighing as its variance in x). With
    `groups` None, the R^2 of the mean clip: what a prediction that ignores the caption explains."""
    error, spread = held_out_residuals(x.flatten(2), groups)
    error, variance = error.mean(dim=(0, 2)), spread.mean(dim=(0, 2))  # (C,)
    return 1 - error / variance, float(1 - error.sum() / variance.sum())


def object_positions(coverage: np.ndarray, temporal: int, spatial: int) -> Tensor:
    """(n_obj, F, H, W) coverage -> (f, h, w) bool: latent positions whose frames and pixels an object
    covers at least a quarter of anywhere (the first latent frame encodes frame 0 alone, each next one
    `temporal` frames)."""
    covered = torch.from_numpy(np.asarray(coverage)).float().amax(0)  # (F, H, W)
    rest = covered[1:].reshape(-1, temporal, *covered.shape[1:]).amax(1)
    frames = torch.cat([covered[:1], rest])
    return F.max_pool2d(frames[None], spatial)[0] > 0.25


def split_share(x: Tensor, groups: list[str], on: Tensor) -> dict[str, float]:
    """x (N, C, f, h, w), on (N, f, h, w): where the variance the per-group mean leaves unexplained lies
    (fit on the first half, scored on the second), and that mean's R^2 on and off the marked positions."""
    error, spread = held_out_residuals(x, groups)
    mask = on[len(groups) // 2 :, None].expand_as(error)
    return {
        "positions_on_objects": float(on.float().mean()),
        "unexplained_on_objects": float(error[mask].sum() / error.sum()),
        "room_r2_off_objects": float(1 - error[~mask].sum() / spread[~mask].sum()),
        "room_r2_on_objects": float(1 - error[mask].sum() / spread[mask].sum()),
    }


def high_frequency_share(x: Tensor) -> Tensor:
    """x (N, C, ..., H, W): per channel, the share of spatial power (each frame's mean removed) at radial
    frequencies above half the Nyquist frequency."""
    x = x.double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().square()
    fy = torch.fft.fftfreq(x.shape[-2]).abs()[:, None]
    fx = torch.fft.fftfreq(x.shape[-1]).abs()[None, :]
    high = (torch.sqrt(fy**2 + fx**2) > 0.25).to(power.dtype)  # Nyquist is 0.5 cycles per sample
    dims = [d for d in range(power.ndim) if d != 1]
    return (power * high).sum(dim=dims) / power.sum(dim=dims).clamp(min=1e-30)


@torch.no_grad()
def measure(pipe: OmniPipeline, clips: int, first_seed: int = FIRST_SEED, frames: int = 33) -> dict:
    latents, pixels, rooms, objects, object_pixels = [], [], [], [], []
    spatial = pipe.vae.config.scale_factor_spatial
    for seed in tqdm(range(first_seed, first_seed + clips), desc="encoding", dynamic_ncols=True):
        try:
            scene = sample_scene(seed, num_frames=frames)
        except RuntimeError:  # no measurable scene for this seed: the data pipelines skip it too
            continue
        clip = render(scene)
        latents.append(pipe.encode_video(clip.frames)[0].cpu())
        pixels.append(inputs.frames_to_tensor(clip.frames)[0])
        rooms.append(scene.room)
        coverage = scene_coverage(scene)
        objects.append(object_positions(coverage, pipe.vae_temporal, spatial))
        object_pixels.append(object_positions(coverage, 1, 1))  # each frame's own pixels
    z = torch.stack(latents)  # normalised per channel, as the transformer sees them
    std = torch.tensor(pipe.vae.config.latents_std or [1.0] * z.shape[1], dtype=z.dtype)
    per_channel, normalised = explained_share(z, rooms)
    _, global_scale = explained_share(z * std.view(1, -1, 1, 1, 1), rooms)
    _, frames_share = explained_share(torch.stack(pixels), rooms)
    _, mean_clip = explained_share(z, None)
    _, frames_mean_clip = explained_share(torch.stack(pixels), None)
    return {
        "clips": len(rooms),
        "raw_std": std.tolist(),
        "room_r2_per_channel": per_channel.tolist(),
        "high_frequency_share": high_frequency_share(z).tolist(),
        "room_r2_normalised": normalised,
        "room_r2_global_scale": global_scale,
        "room_r2_frames": frames_share,
        "mean_clip_r2_normalised": mean_clip,  # the part of the room R^2 that needs no caption
        "mean_clip_r2_frames": frames_mean_clip,
        "frames_high_frequency_share": high_frequency_share(torch.stack(pixels)).mean().item(),
        **split_share(z, rooms, torch.stack(objects)),
        "frames": split_share(torch.stack(pixels), rooms, torch.stack(object_pixels)),
    }


def main(model: str, clips: int) -> dict:
    result = measure(OmniPipeline.from_pretrained(model), clips)
    print(
        f"{result['clips']} toy clips from seed {FIRST_SEED}; room R^2 fitted on the first half, scored on the second"
    )
    print(f"{'channel':>8s}{'raw std':>10s}{'room R^2':>10s}{'fine detail':>13s}")
    for c, (s, r, h) in enumerate(
        zip(result["raw_std"], result["room_r2_per_channel"], result["high_frequency_share"])
    ):
        print(f"{c:8d}{s:10.3f}{r:10.3f}{h:13.3f}")
    print(
        f"room R^2, latents normalised per channel (what the transformer sees): {result['room_r2_normalised']:.3f}"
    )
    print(
        f"room R^2, latents under one global scale:                         {result['room_r2_global_scale']:.3f}"
    )
    print(
        f"room R^2, the frames themselves:                                   {result['room_r2_frames']:.3f} "
        f"(fine detail {result['frames_high_frequency_share']:.3f})"
    )
    print(
        f"of which the mean clip alone (no caption) explains {result['mean_clip_r2_normalised']:.3f} of the "
        f"latents and {result['mean_clip_r2_frames']:.3f} of the frames"
    )
    print(
        f"objects cover {result['positions_on_objects']:.3f} of the latent positions and hold "
        f"{result['unexplained_on_objects']:.3f} of the variance the room leaves unexplained; room R^2 "
        f"{result['room_r2_off_objects']:.3f} off objects, {result['room_r2_on_objects']:.3f} on them"
    )
    frames = result["frames"]
    print(
        f"in the frames, objects cover {frames['positions_on_objects']:.3f} of the pixels and hold "
        f"{frames['unexplained_on_objects']:.3f} of it; room R^2 {frames['room_r2_off_objects']:.3f} off "
        f"objects, {frames['room_r2_on_objects']:.3f} on them"
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pipeline folder with the codecs (e.g. omni codecs' output)")
    parser.add_argument("--clips", type=int, default=400)
    args = parser.parse_args()
    main(args.model, args.clips)
