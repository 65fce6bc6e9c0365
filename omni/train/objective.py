"""Flow matching over every task at once: a task mask and condition dropout per sample, loss on noisy tokens.

x_t = (1 - t) * x_0 + t * noise for the tokens to generate (t from a shifted logit-normal), x_0 itself for
clean tokens (timestep 0). The model predicts the velocity noise - x_0. Dropping a condition group removes its
clean tokens from attention (text: the empty prompt). A batch's streams are `StreamPlan`s, the type the
pipeline plans with, and become the transformer's streams as the sampler's do (`StreamPlan.stream`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from omni.conditioning.masks import SampleMask, sample_task_mask, sample_tasks
from omni.conditioning.motion import CameraPath, Trajectory, control_maps
from omni.conditioning.plan import REFERENCE_SECONDS, StreamPlan
from omni.data.batch import LatentBatch
from omni.models.streams import LatentStream, frame_noise, learned_frame_noise
from omni.tasks import CONDITION_OF_STREAM


@dataclass(frozen=True)
class TimestepSampler:
    """t = shift * s / (1 + (shift - 1) * s) with s = sigmoid(N(logit_mean, logit_std)) (SD3-style); with
    probability `tail`, t is instead drawn uniformly from [tail_min, 1].

    The tail is where a sampler starts (its first steps at shift 3 and 20 steps lie in [0.94, 1]) and where
    nothing but the caption says what to draw; a logit-normal with shift 3 gives t > 0.97 to 0.9% of samples.
    """

    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 1.0
    tail: float = 0.0
    tail_min: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 <= self.tail <= 1.0:
            raise ValueError(f"timesteps.tail must be a probability in [0, 1], got {self.tail}")
        if not 0.0 <= self.tail_min < 1.0:
            raise ValueError(f"timesteps.tail_min must be in [0, 1), got {self.tail_min}")

    def sample(self, count: int, generator: torch.Generator) -> Tensor:
        s = torch.sigmoid(self.logit_mean + self.logit_std * torch.randn(count, generator=generator))
        t = self.shift * s / (1 + (self.shift - 1) * s)
        if self.tail:  # drawn only when asked for, so runs without a tail keep their random streams
            in_tail = torch.rand(count, generator=generator) < self.tail
            uniform = self.tail_min + (1 - self.tail_min) * torch.rand(count, generator=generator)
            t = torch.where(in_tail, uniform, t)
        return t


@dataclass(frozen=True)
class ObjectiveConfig:
    """Task mix, condition dropout and loss weights."""

    tasks: dict[str, float] = field(default_factory=lambda: {"t2av": 1.0})
    dropout_text: float = 0.1
    dropout_image: float = 0.1
    dropout_audio: float = 0.1
    loss_weights: dict[str, float] = field(default_factory=lambda: {"video": 1.0, "image": 1.0, "audio": 1.0})
    timesteps: TimestepSampler = field(default_factory=TimestepSampler)
    trajectory_probability: float = 0.5  # of conditioning on a known subject trajectory (motion control)
    camera_probability: float = 0.5  # of conditioning on a known camera path
    # of a sample seeing the model's own x_0 estimate from a first forward pass without gradients (a model
    # built with `self_condition`); the others see none, as a sampler's first step does
    self_condition: float = 0.0
    # extra loss weight on the video latents inside the clips' subject boxes: 1 + focus_weight there, 1
    # elsewhere, rescaled to a mean of 1 over each sample's latents (needs data that marks subject boxes)
    focus_weight: float = 0.0
    # the focus applies to samples noised to at most this level. A weight that follows the target biases the
    # loss's optimum where x_t does not yet show where the subject is (towards drawing it everywhere); below
    # about 0.9 it does show, and the optimum stays the posterior mean
    focus_max_sigma: float = 1.0


@dataclass
class LossOutput:
    loss: Tensor
    per_modality: dict[str, float]
    per_task: dict[str, float]
    tokens: int  # tokens per step that took part in attention
    streams: list[LatentStream]


def _stack(masks: list[Tensor | None], frames: int) -> tuple[Tensor, Tensor]:
    """Per-sample masks (None = absent) -> clean (B, F) and present (B,)."""
    present = torch.tensor([m is not None for m in masks])
    clean = torch.stack([m if m is not None else torch.zeros(frames, dtype=torch.bool) for m in masks])
    return clean, present


def _streams(
    batch: LatentBatch, masks: list[SampleMask], every_stream: bool, control: Tensor | None
) -> list[StreamPlan]:
    """The batch's streams, each clip's latents as the clean latents; with `every_stream`, also those no
    sample uses (all masked), so that every process of a sharded run touches the same parameters."""
    plans = []
    if batch.video is not None and (every_stream or any(m.video is not None for m in masks)):
        clean, present = _stack([m.video for m in masks], batch.video.shape[2])
        plans.append(
            StreamPlan(
                "video",
                tuple(batch.video.shape[1:]),
                frame_seconds=batch.video_frame_seconds,
                clean=batch.video,
                clean_mask=clean,
                present=present,
                condition=CONDITION_OF_STREAM["video"],
                control=control,
            )
        )
    if batch.audio is not None and (every_stream or any(m.audio is not None for m in masks)):
        clean, present = _stack([m.audio for m in masks], batch.audio.shape[2])
        plans.append(
            StreamPlan(
                "audio",
                tuple(batch.audio.shape[1:]),
                frame_seconds=batch.audio_frame_seconds,
                clean=batch.audio,
                clean_mask=clean,
                present=present,
                condition=CONDITION_OF_STREAM["audio"],
            )
        )
    if batch.video is not None and (every_stream or any(m.image is not None for m in masks)):
        # Text-to-image targets the clip's first latent frame (an image latent of a causal VAE); a reference
        # uses the clip's standalone reference image, placed where the pipeline places references.
        first = batch.video[:, :, :1]
        reference = batch.reference if batch.reference is not None else first
        use_reference = torch.tensor([m.task == "ref" for m in masks]).view(-1, 1, 1, 1, 1).to(first.device)
        image = torch.where(use_reference, reference, first)
        clean, present = _stack([m.image for m in masks], 1)
        group = CONDITION_OF_STREAM["image"]  # the same group whether a target (t2i) or a reference (ref)
        plans.append(
            StreamPlan(
                "image",
                tuple(image.shape[1:]),
                start_seconds=REFERENCE_SECONDS,
                frame_seconds=1.0,
                clean=image,
                clean_mask=clean,
                present=present,
                condition=group,
            )
        )
    return plans


def flow_matching_loss(
    model,
    batch: LatentBatch,
    empty_text: Tensor,
    empty_text_mask: Tensor,
    config: ObjectiveConfig,
    generator: torch.Generator,
    every_stream: bool = False,
) -> LossOutput:
    """One training loss over a batch: tasks, timesteps, noise and dropout all drawn from `generator` (CPU).

    `every_stream` (set for sharded runs) keeps streams no sample uses in the forward pass, fully masked and
    with zero loss weight, so all processes produce gradients for the same parameters (FSDP requires it).
    """
    size = batch.batch_size
    device = batch.text.device
    video_frames = batch.video.shape[2] if batch.video is not None else 1
    audio_frames = batch.audio.shape[2] if batch.audio is not None else 1
    tasks = sample_tasks(config.tasks, size, generator)
    masks = [
        sample_task_mask(
            task, video_frames, audio_frames, batch.video_frame_seconds, batch.audio_frame_seconds, generator
        )
        for task in tasks
    ]
    t = config.timesteps.sample(size, generator)  # (B,)
    drop = {
        name: torch.rand(size, generator=generator) < p
        for name, p in (
            ("text", config.dropout_text),
            ("image", config.dropout_image),
            ("audio", config.dropout_audio),
        )
    }

    control = _control(model, batch, config, generator)
    focus = _focus(batch, config.focus_weight) if config.focus_weight else None
    if focus is not None and config.focus_max_sigma < 1.0:
        focus = torch.where((t <= config.focus_max_sigma).view(-1, 1, 1, 1, 1), focus, torch.ones_like(focus))
    shared = learned_frame_noise(model)
    streams, targets, loss_masks, weights = [], [], [], []
    for plan in _streams(batch, masks, every_stream, control):
        x0 = plan.clean
        noise = frame_noise(x0.shape, generator, shared).to(device, x0.dtype)
        view = (-1, 1, x0.shape[2]) + (1,) * (x0.ndim - 3)
        sigma = torch.where(plan.clean_mask.to(device), 0.0, t[:, None].to(device)).view(view)
        xt = (1 - sigma) * x0 + sigma * noise
        streams.append(plan.stream(xt, t.to(device) * 1000, drop))
        targets.append(noise - x0)
        loss_masks.append((plan.present[:, None] & ~plan.clean_mask).to(device))
        weights.append(_focus_of(plan.modality, focus, masks, device))

    text = torch.where(drop["text"].to(device)[:, None, None], empty_text.to(batch.text), batch.text)
    text_mask = torch.where(drop["text"].to(device)[:, None], empty_text_mask.to(device), batch.text_mask)
    if config.self_condition > 0:
        streams = _self_conditioned(model, streams, text, text_mask, config.self_condition, generator)
    predictions = model(streams, text, text_mask)

    total = torch.zeros((), device=device)
    per_sample = torch.zeros(size, device=device)
    per_modality = {}
    for stream, v, target, mask, focus_weight in zip(streams, predictions, targets, loss_masks, weights):
        error = (v.float() - target.float()).square()
        if focus_weight is not None:  # (B, 1, F, H, W), a mean of 1 over each sample's latents
            error = error * focus_weight
        error = error.mean(dim=[1] + list(range(3, v.ndim)))  # (B, F)
        weight = config.loss_weights.get(stream.modality, 1.0)
        count = mask.sum()
        if count == 0:
            total = total + 0.0 * v.sum()  # keeps this stream's parameters in the graph (zero gradient)
            continue
        stream_loss = (error * mask).sum() / count
        total = total + weight * stream_loss
        per_modality[stream.modality] = float(stream_loss.detach())
        per_sample = per_sample + weight * (error * mask).sum(1).detach() / mask.sum(1).clamp(min=1)
    per_task: dict[str, list[float]] = defaultdict(list)
    for task, value in zip(tasks, per_sample.tolist()):
        per_task[task].append(value)
    tokens = sum(int(_active_tokens(model, s)) for s in streams)
    return LossOutput(total, per_modality, {k: sum(v) / len(v) for k, v in per_task.items()}, tokens, streams)


def _self_conditioned(
    model, streams: list[LatentStream], text: Tensor, text_mask: Tensor, p: float, generator: torch.Generator
) -> list[LatentStream]:
    """The streams with the model's own x_0 estimate (a forward pass without gradients) for a share `p` of the
    samples, zeros (no estimate) for the others."""
    size = streams[0].latents.shape[0]
    chosen = torch.rand(size, generator=generator) < p
    if not bool(chosen.any()):
        return streams
    with torch.no_grad():
        velocities = model(streams, text, text_mask)
    patch = tuple(model.config["patch_size"])
    out = []
    for stream, v in zip(streams, velocities):
        keep = chosen.to(v.device).view(-1, *([1] * (v.ndim - 1)))
        estimate = torch.where(keep, stream.sample_estimate(v, patch), 0.0).to(stream.latents.dtype)
        out.append(replace(stream, self_condition=estimate))
    return out


def _control(model, batch: LatentBatch, config: ObjectiveConfig, generator: torch.Generator) -> Tensor | None:
    """(B, Cc, F, h, w) motion-control maps: each known trajectory / camera path kept with its probability."""
    if (
        not getattr(getattr(model, "config", None), "control_channels", 0)
        or batch.motion is None
        or batch.video is None
    ):
        return None
    motion = batch.motion.cpu().double().numpy()
    keep_trajectory = torch.rand(batch.batch_size, generator=generator) < config.trajectory_probability
    keep_camera = torch.rand(batch.batch_size, generator=generator) < config.camera_probability
    grid = tuple(batch.video.shape[2:])
    temporal = _temporal_compression(motion.shape[1], grid[0])
    maps = []
    for i, sample in enumerate(motion):
        trajectory = camera = None
        if keep_trajectory[i] and not np.isnan(sample[:, :2]).all():
            trajectory = Trajectory(sample[:, :2])
        if keep_camera[i] and not np.isnan(sample[:, 2:]).any():
            camera = CameraPath(sample[:, 2:4], sample[:, 4])
        maps.append(control_maps(grid, batch.frame_size, camera, trajectory, temporal))
    return torch.stack(maps)


def _temporal_compression(pixel_frames: int, latent_frames: int) -> int:
    """Pixel frames per latent frame of a causal video codec (1 + temporal * (latent_frames - 1) pixel frames)."""
    return (pixel_frames - 1) // (latent_frames - 1) if latent_frames > 1 else 1


def focus_needs_boxes(focus_weight: float) -> str:
    """The error for a focused loss on data without subject boxes."""
    return (
        f"focus_weight: {focus_weight} needs data that marks its subjects' boxes (the toyworld stream does; "
        "prepared shards do not): set focus_weight: 0"
    )


def _focus(batch: LatentBatch, focus_weight: float) -> Tensor:
    """(B, 1, F, H, W) loss weights on the video latent grid: 1 + focus_weight on the cells a subject box
    touches in any pixel frame of the latent frame, 1 elsewhere, scaled to a mean of 1 per sample."""
    if batch.subject_boxes is None or batch.video is None or batch.frame_size is None:
        raise ValueError(focus_needs_boxes(focus_weight))
    boxes = batch.subject_boxes.double()  # (B, Fp, 4) pixels
    frames, rows, cols = batch.video.shape[2:]
    height, width = batch.frame_size
    temporal = _temporal_compression(boxes.shape[1], frames)
    # latent frame 0 holds pixel frame 0, frame i >= 1 the `temporal` frames (i - 1) * temporal + 1 ... i * temporal
    group = (
        torch.arange(boxes.shape[1])
        .add(temporal - 1)
        .div(temporal, rounding_mode="floor")
        .clamp(max=frames - 1)
    )
    known = ~boxes.isnan().any(-1)  # (B, Fp)
    y0 = torch.arange(rows, dtype=torch.float64) * height / rows  # cell edges
    x0 = torch.arange(cols, dtype=torch.float64) * width / cols
    inside_y = (y0 + height / rows > boxes[..., 1, None]) & (y0 < boxes[..., 3, None])  # (B, Fp, rows)
    inside_x = (x0 + width / cols > boxes[..., 0, None]) & (x0 < boxes[..., 2, None])  # (B, Fp, cols)
    touched = (
        inside_y[..., :, None] & inside_x[..., None, :] & known[..., None, None]
    ).float()  # (B, Fp, h, w)
    cells = torch.stack([touched[:, group == i].amax(dim=1) for i in range(frames)], dim=1)
    weight = 1 + focus_weight * cells
    return (weight / weight.mean(dim=(1, 2, 3), keepdim=True))[:, None]


def _focus_of(modality: str, focus: Tensor | None, masks: list[SampleMask], device) -> Tensor | None:
    """A stream's loss weights from the video focus: the video's, the image target's first frame (a
    reference image, standalone, is weighted evenly), none for audio."""
    if focus is None or modality == "audio":
        return None
    if modality == "video":
        return focus.to(device)
    first = focus[:, :, :1]
    first = first / first.mean(dim=(2, 3, 4), keepdim=True)
    reference = torch.tensor([m.task == "ref" for m in masks]).view(-1, 1, 1, 1, 1)
    return torch.where(reference, torch.ones_like(first), first).to(device)


def _active_tokens(model, stream: LatentStream) -> int:
    """Tokens of `stream` over the batch that take part in attention."""
    per_frame = model.num_tokens([stream]) // stream.latents.shape[2]
    if stream.token_mask is None:
        return per_frame * stream.latents.shape[2] * stream.latents.shape[0]
    return per_frame * int(stream.token_mask.sum())
