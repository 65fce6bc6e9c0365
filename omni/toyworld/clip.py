"""Render a scene into a clip (frames, audio, caption, ground truth) and write it as `<stem>.mp4` + `.json`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from omni.toyworld.captions import canonical_caption, caption
from omni.toyworld.groundtruth import GroundTruth, build_ground_truth
from omni.toyworld.render import composite, scene_coverage
from omni.toyworld.sampling import sample_scene
from omni.toyworld.sound import render_audio
from omni.toyworld.spec import ROOMS, SceneSpec

if TYPE_CHECKING:
    import omni.data.clips


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


def subject_reference(scene: SceneSpec, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 still image of the scene's objects (same shapes, colours, sizes) somewhere else in
    another room: what a user hands over as the subject's reference."""
    rng = np.random.default_rng(seed)
    room = str(rng.choice([r for r in ROOMS if r != scene.room]))
    still = sample_scene(
        seed,
        num_objects=len(scene.objects),
        shape=tuple(o.shape for o in scene.objects),
        color=tuple(o.color for o in scene.objects),
        size=tuple(o.size for o in scene.objects),
        motion=("still",) * len(scene.objects),
        room=room,
        pan=False,
        width=scene.width,
        height=scene.height,
        fps=scene.fps,
        num_frames=1,
        sample_rate=scene.sample_rate,
    )
    return render(still).frames[0]


# A scene's motion is drawn for this many frames (2 s at 16 fps), however few of them are rendered: a
# shorter clip, or an image, is the start of a whole scene, so its caption's motion still holds.
MOTION_FRAMES = 33


def prepare_clips(
    count: int,
    seed: int,
    *,
    fps: float,
    height: int,
    width: int,
    num_frames: int,
    sample_rate: int,
    num_objects: int | None = None,
    lanes: float = 0.0,
    motion_weights: dict[str, float] | None = None,
) -> Iterator[omni.data.clips.SourceClip]:
    """`count` random clips from seeds `seed`, `seed + 1`, ...: the clip source `omni prepare --toyworld`
    encodes, with a subject reference image, the camera path and (one object only) the subject trajectory."""
    from omni.data.clips import SourceClip  # the data package builds on the toy world, not the reverse

    for index in range(count):
        scene = sample_scene(
            seed + index,
            num_objects=num_objects,
            fps=fps,
            height=height,
            width=width,
            num_frames=max(num_frames, MOTION_FRAMES),
            sample_rate=sample_rate,
            lanes=lanes,
            motion_weights=motion_weights,
        )
        if scene.num_frames != num_frames:  # the start of a scene drawn at full length (an image: frame 0)
            scene = replace(scene, num_frames=num_frames)
        clip = render(scene)
        truth = clip.ground_truth
        camera = np.concatenate([truth.camera_offsets, np.ones((scene.num_frames, 1))], axis=1)
        trajectory = truth.objects[0].centers if len(truth.objects) == 1 else None
        boxes = np.stack([o.bboxes for o in truth.objects])  # (objects, F, 4): one box around them all
        subject_boxes = np.concatenate([boxes[..., :2].min(0), boxes[..., 2:].max(0)], axis=-1)
        yield SourceClip(
            f"toy_{seed + index}",
            clip.frames,
            clip.fps,
            clip.audio[None],
            clip.sample_rate,
            clip.caption,
            origin="toyworld",
            reference=subject_reference(scene, 1_000_000_007 + seed + index),
            trajectory=trajectory,
            camera=camera,
            subject_boxes=subject_boxes,
        )
