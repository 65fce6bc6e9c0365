"""Task masks: which streams a sample uses and which of their latent frames are given clean.

Every task is a mask over the same streams, declared once in `omni.tasks`. Training draws a task per sample
and its clean frames from that table, so one checkpoint learns them all; the pipeline plans a request with the
same clean rules (`clean_frames`), its parameters given by the user instead of drawn.
Times are seconds on the clip clock: latent frame i of a stream sits at i * frame_seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from omni.models.streams import LatentStream
from omni.tasks import TRAINED, Task, get_task


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


def condition_token_mask(clean: Tensor, dropped: Tensor) -> Tensor:
    """Which tokens of a stream attend when its condition group is dropped: False at the clean tokens of the
    samples that drop it, True elsewhere. Training's condition dropout and guidance's rows without a condition
    both read it, so dropping a group means the same in both.

    clean: (B, F) per latent frame or (B, F, H/ph, W/pw) per token, True = given clean; dropped: (B,) bool.
    """
    return ~(clean & dropped.view(-1, *([1] * (clean.ndim - 1))))


def noisy_stream(
    modality: str,
    latents: Tensor,
    clean: Tensor,
    timestep: Tensor | float,
    dropped: Tensor,
    start_seconds: float = 0.0,
    frame_seconds: float = 0.25,
    present: Tensor | None = None,
    control: Tensor | None = None,
) -> LatentStream:
    """A stream as the transformer sees it, in training and in sampling alike: clean tokens at timestep 0, the
    others at `timestep` (noise level x 1000, a scalar or (B,)); a dropped condition's clean tokens are out of
    attention (`condition_token_mask`), as is every token of a sample that lacks this stream (`present` False).

    latents: (B, C, F, ...); clean: (B, F) or (B, F, H/ph, W/pw) bool, True = given clean; dropped, present: (B,).
    """
    t = torch.as_tensor(timestep, device=clean.device)
    per_sample = (-1, *([1] * (clean.ndim - 1)))
    timesteps = torch.where(clean, 0.0, t.view(per_sample) if t.ndim else t).float()
    keep = condition_token_mask(clean, dropped)
    if present is not None:
        keep = keep & present.view(per_sample)
    token_mask = None if bool(keep.all()) else keep
    return LatentStream(modality, latents, timesteps, start_seconds, frame_seconds, token_mask, control)


@dataclass(frozen=True)
class SampleMask:
    """One sample's task: per stream, None if the stream is absent, else (frames,) bool, True = given clean.

    `image` is a 1-frame image stream: the target of text-to-image (not clean) or a reference (clean).
    """

    task: str
    video: Tensor | None
    audio: Tensor | None
    image: Tensor | None = None


@dataclass(frozen=True)
class TaskParameters:
    """What a task's clean rules read besides lengths (`omni.tasks.Task.parameters`): the seconds of given
    context (extension), or the time range a retake redoes and which streams ("video", "audio", "both")."""

    context_seconds: float | None = None
    start: float | None = None
    end: float | None = None
    redo: str = "both"


def clean_frames(
    rule: str, stream: str, num_frames: int, frame_seconds: float, params: TaskParameters
) -> Tensor:
    """(num_frames,) bool, True = given clean: a clean rule of `omni.tasks.CLEAN_RULES` for one stream."""
    if rule == "none":
        return torch.zeros(num_frames, dtype=torch.bool)
    mask = torch.ones(num_frames, dtype=torch.bool)
    if rule == "first":
        mask = torch.zeros(num_frames, dtype=torch.bool)
        mask[0] = True
    elif rule == "first_last":
        mask = torch.zeros(num_frames, dtype=torch.bool)
        mask[[0, -1]] = True
    elif rule == "context":
        mask = frames_before(num_frames, frame_seconds, params.context_seconds)
    elif rule == "outside_range" and params.redo in (stream, "both"):
        mask = ~frames_in_range(num_frames, frame_seconds, params.start, params.end)
    return mask


def draw_parameters(
    task: Task, video_frames: int, video_frame_seconds: float, generator: torch.Generator
) -> TaskParameters:
    """Random parameters of `task` for a training clip: an extension keeps the first K latent frames (and
    the audio over the same time); a retake redoes 20-80% of the clip in video, audio or both."""

    def uniform() -> float:
        return float(torch.rand((), generator=generator))

    if task.parameters == "context":
        keep = 1 + math.floor(uniform() * max(1, video_frames - 1))
        return TaskParameters(context_seconds=(keep - 1) * video_frame_seconds)
    if task.parameters == "range":
        duration = (video_frames - 1) * video_frame_seconds
        length = duration * (0.2 + 0.6 * uniform())
        start = (duration - length) * uniform()
        redo = ("video", "audio", "both")[min(2, int(uniform() * 3))]
        return TaskParameters(start=start, end=start + length, redo=redo)
    return TaskParameters()


def sample_task_mask(
    task: str,
    video_frames: int,
    audio_frames: int,
    video_frame_seconds: float,
    audio_frame_seconds: float,
    generator: torch.Generator,
) -> SampleMask:
    """The clean/noisy layout of `task` (its entry in `omni.tasks.TASKS`) for a clip with the given latent
    frame counts, randomised where the task has free parameters (extension length, retake range and streams)."""
    entry = get_task(task, offered=False)
    params = draw_parameters(entry, video_frames, video_frame_seconds, generator)
    lengths = {
        "video": (video_frames, video_frame_seconds),
        "audio": (audio_frames, audio_frame_seconds),
        "image": (1, 1.0),
        "reference": (1, 1.0),
    }
    masks = {
        stream: clean_frames(rule, stream, *lengths[stream], params) for stream, rule in entry.streams.items()
    }
    image = masks.get("image", masks.get("reference"))
    return SampleMask(task, masks.get("video"), masks.get("audio"), image)


def sample_tasks(weights: dict[str, float], count: int, generator: torch.Generator) -> list[str]:
    """Draw `count` task names with probabilities proportional to `weights`."""
    names = [name for name, w in weights.items() if w > 0]
    if not names:
        raise ValueError(f"task weights must give at least one task a positive weight, got {weights}")
    unknown = sorted(set(weights) - set(TRAINED))
    if unknown:
        raise ValueError(f"unknown training task(s) {unknown}; choose from {list(TRAINED)}")
    probs = torch.tensor([weights[n] for n in names], dtype=torch.float64)
    picks = torch.multinomial(probs, count, replacement=True, generator=generator)
    return [names[i] for i in picks.tolist()]
