"""Render a scene into a clip (frames, audio, caption, ground truth) and write it as `<stem>.mp4` + `.json`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omni.data.toyworld.captions import canonical_caption, caption
from omni.data.toyworld.groundtruth import GroundTruth, build_ground_truth
from omni.data.toyworld.render import composite, scene_coverage
from omni.data.toyworld.sampling import sample_scene
from omni.data.toyworld.sound import render_audio
from omni.data.toyworld.spec import SceneSpec


@dataclass(frozen=True, eq=False)
class ToyClip:
    """One rendered clip.

    Attributes:
        scene: the spec it was rendered from.
        frames: (F, H, W, 3) uint8 RGB.
        audio: (N,) float32 mono in [-1, 1], N = num_frames / fps * sample_rate.
        caption: varied wording drawn from the scene's seed.
        ground_truth: object centres, boxes, visibility, bounce times and pitches.
    """

    scene: SceneSpec
    frames: np.ndarray
    audio: np.ndarray
    caption: str
    ground_truth: GroundTruth

    @property
    def fps(self) -> float:
        return self.scene.fps

    @property
    def sample_rate(self) -> int:
        return self.scene.sample_rate


def render(scene: SceneSpec) -> ToyClip:
    """Render `scene`; the same scene always gives the same arrays and caption."""
    coverage = scene_coverage(scene)
    return ToyClip(
        scene=scene,
        frames=composite(scene, coverage),
        audio=render_audio(scene),
        caption=caption(scene),
        ground_truth=build_ground_truth(scene, coverage),
    )


def clip_record(clip: ToyClip) -> dict:
    """What `<stem>.json` holds: the scene (to re-render it), both captions and the ground truth."""
    return {
        "scene": clip.scene.to_dict(),
        "caption": clip.caption,
        "canonical_caption": canonical_caption(clip.scene),
        "ground_truth": clip.ground_truth.to_dict(),
    }


def render_to_files(scene: SceneSpec, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Render `scene` and write `<out_dir>/<stem>.mp4` (H.264 + AAC) and `<stem>.json`; return both paths."""
    from omni.media import atomic_output, write_mp4

    if not stem or Path(stem).name != stem:
        raise ValueError(f"stem must be a plain file name without folders, got {stem!r}")
    clip = render(scene)
    out_dir = Path(out_dir)
    video_path, record_path = out_dir / f"{stem}.mp4", out_dir / f"{stem}.json"
    write_mp4(video_path, clip.frames, scene.fps, audio=clip.audio, sample_rate=scene.sample_rate)
    with atomic_output(record_path) as tmp:
        tmp.write_text(json.dumps(clip_record(clip), indent=1) + "\n", encoding="utf-8")
    return video_path, record_path


def prepare_clips(
    count: int, seed: int, *, fps: float, height: int, width: int, num_frames: int, sample_rate: int
) -> Iterator[tuple[str, np.ndarray, float, np.ndarray, int, str]]:
    """`count` random clips from seeds `seed`, `seed + 1`, ... as (clip id, frames (F, H, W, 3) uint8, fps,
    audio (1, N) float32, sample rate, caption): the clip source `omni prepare --toyworld` encodes."""
    for index in range(count):
        scene = sample_scene(
            seed + index, fps=fps, height=height, width=width, num_frames=num_frames, sample_rate=sample_rate
        )
        clip = render(scene)
        yield f"toy_{seed + index}", clip.frames, clip.fps, clip.audio[None], clip.sample_rate, clip.caption
