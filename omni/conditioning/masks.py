"""Task masks: which streams a sample uses and which of their latent frames are given clean.

Every task is a mask over the same streams (DESIGN.md section 1). Training draws a task per sample from
these, so one checkpoint learns them all; inference builds the same masks for the task a user asks for.
Times are seconds on the clip clock: latent frame i of a stream sits at i * frame_seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

TRAIN_TASKS = ("t2av", "t2v", "t2a", "t2i", "i2v", "flf", "extend", "retake", "a2v", "v2a", "ref")


def frames_before(num_frames: int, frame_seconds: float, seconds: float) -> Tensor:
    """(num_frames,) bool: latent frames whose time is at most `seconds` (with a small tolerance)."""
    times = torch.arange(num_frames, dtype=torch.float64) * frame_seconds
    return times <= seconds + 1e-6


def frames_in_range(num_frames: int, frame_seconds: float, start: float, end: float) -> Tensor:
    """(num_frames,) bool: latent frames whose span ((i - 1) * frame_seconds, i * frame_seconds] meets [start, end].

    Latent frame i summarises the input frames since the previous latent frame (causal VAEs), so a time range
    touches every latent frame whose span overlaps it.
    """
    index = torch.arange(num_frames, dtype=torch.float64)
    span_end = index * frame_seconds
    span_start = (index - 1) * frame_seconds
    return (span_end >= start - 1e-6) & (span_start < end - 1e-6)


@dataclass(frozen=True)
class SampleMask:
    """One sample's task: per stream, None if the stream is absent, else (frames,) bool, True = given clean.

    `image` is a 1-frame image stream: the target of text-to-image (not clean) or a reference (clean).
    """

    task: str
    video: Tensor | None
    audio: Tensor | None
    image: Tensor | None = None


def sample_task_mask(
    task: str,
    video_frames: int,
    audio_frames: int,
    video_frame_seconds: float,
    audio_frame_seconds: float,
    generator: torch.Generator,
) -> SampleMask:
    """The clean/noisy layout of `task` for a clip with the given latent frame counts, randomised where the
    task has free parameters (extension length, retake range and modality)."""
    if task not in TRAIN_TASKS:
        raise ValueError(f"unknown training task {task!r}; choose from {list(TRAIN_TASKS)}")
    noisy_video = torch.zeros(video_frames, dtype=torch.bool)
    noisy_audio = torch.zeros(audio_frames, dtype=torch.bool)

    def uniform() -> float:
        return float(torch.rand((), generator=generator))

    if task == "t2av":
        return SampleMask(task, noisy_video, noisy_audio)
    if task == "t2v":
        return SampleMask(task, noisy_video, None)
    if task == "t2a":
        return SampleMask(task, None, noisy_audio)
    if task == "t2i":
        return SampleMask(task, None, None, torch.zeros(1, dtype=torch.bool))
    if task == "ref":
        return SampleMask(task, noisy_video, noisy_audio, torch.ones(1, dtype=torch.bool))
    if task == "a2v":
        return SampleMask(task, noisy_video, ~noisy_audio)
    if task == "v2a":
        return SampleMask(task, ~noisy_video, noisy_audio)
    if task == "i2v":
        video = noisy_video.clone()
        video[0] = True
        return SampleMask(task, video, noisy_audio)
    if task == "flf":
        video = noisy_video.clone()
        video[[0, -1]] = True
        return SampleMask(task, video, noisy_audio)
    if task == "extend":
        # The first K latent frames (and the audio over the same time) are the previous chunk's tail.
        keep = 1 + math.floor(uniform() * max(1, video_frames - 1))
        seconds = (keep - 1) * video_frame_seconds
        return SampleMask(
            task,
            frames_before(video_frames, video_frame_seconds, seconds),
            frames_before(audio_frames, audio_frame_seconds, seconds),
        )
    # retake: regenerate a random time range in video, audio or both; everything outside stays clean.
    duration = (video_frames - 1) * video_frame_seconds
    length = duration * (0.2 + 0.6 * uniform())
    start = (duration - length) * uniform()
    modality = ("video", "audio", "both")[min(2, int(uniform() * 3))]
    video = torch.ones(video_frames, dtype=torch.bool)
    audio = torch.ones(audio_frames, dtype=torch.bool)
    if modality in ("video", "both"):
        video = ~frames_in_range(video_frames, video_frame_seconds, start, start + length)
    if modality in ("audio", "both"):
        audio = ~frames_in_range(audio_frames, audio_frame_seconds, start, start + length)
    return SampleMask(task, video, audio)


def sample_tasks(weights: dict[str, float], count: int, generator: torch.Generator) -> list[str]:
    """Draw `count` task names with probabilities proportional to `weights`."""
    names = [name for name, w in weights.items() if w > 0]
    if not names:
        raise ValueError(f"task weights must give at least one task a positive weight, got {weights}")
    unknown = sorted(set(weights) - set(TRAIN_TASKS))
    if unknown:
        raise ValueError(f"unknown training task(s) {unknown}; choose from {list(TRAIN_TASKS)}")
    probs = torch.tensor([weights[n] for n in names], dtype=torch.float64)
    picks = torch.multinomial(probs, count, replacement=True, generator=generator)
    return [names[i] for i in picks.tolist()]
