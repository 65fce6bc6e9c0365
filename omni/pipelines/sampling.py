"""One denoising loop for every task: masked joint flow matching with multi-condition guidance.

A task is a list of `StreamPlan`s: the latent streams to denoise together and, per stream, which latent
frames (or tokens) are given clean. Clean tokens enter the transformer at timestep 0 and are written back
after every scheduler step, so the sampler never changes them.

Guidance composes one term per condition (InstructPix2Pix-style nesting), all rows batched into one forward:

    v = r_0 + sum_i s_i * (r_i - r_{i-1}),   r_i = prediction with conditions 1..i enabled

A condition whose scale is 1 needs no row of its own: conditions are ordered so those come first.
Dropping "image" or "audio" removes those clean tokens from attention (`condition_token_mask`, as in
training); dropping "text" swaps in the negative prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from omni.conditioning.masks import noisy_stream
from omni.models.streams import LatentStream
from omni.models.transformer import OmniTransformer
from omni.pipelines.progress import RunProgress

CONDITIONS = ("image", "audio", "text")


@dataclass
class StreamPlan:
    """A latent stream to denoise and what is known about it.

    Attributes:
        modality: "video", "image" or "audio".
        shape: latent shape without batch: (C, F, H, W) for video/image, (C, T, M) for audio.
        start_seconds, frame_seconds: where the stream sits on the clip clock (see `LatentStream`).
        clean: (C, ...) latents holding the given values where `clean_mask` is True.
        clean_mask: (F,) per latent frame or (F, H/ph, W/pw) per token, True where given; None = all noisy.
        condition: guidance group of the clean tokens ("image" or "audio"); None = never dropped.
        output: False for streams that only condition the others (reference images).
        control: optional (Cc, F, H, W) motion-control maps of a video stream (kept in every guidance row).
    """

    modality: str
    shape: tuple[int, ...]
    start_seconds: float = 0.0
    frame_seconds: float = 0.25
    clean: Tensor | None = None
    clean_mask: Tensor | None = None
    condition: str | None = None
    output: bool = True
    control: Tensor | None = None

    def __post_init__(self) -> None:
        if (self.clean is None) != (self.clean_mask is None):
            raise ValueError(f"{self.modality} plan: give both clean latents and clean_mask, or neither")
        if self.clean is not None and tuple(self.clean.shape) != tuple(self.shape):
            raise ValueError(
                f"{self.modality} plan: clean latents {tuple(self.clean.shape)} != shape {self.shape}"
            )
        if self.clean_mask is not None and self.clean_mask.shape[0] != self.shape[1]:
            raise ValueError(
                f"{self.modality} plan: clean_mask covers {self.clean_mask.shape[0]} frames, latents have {self.shape[1]}"
            )
        if self.condition not in (None, "image", "audio"):
            raise ValueError(f"condition must be 'image', 'audio' or None, got {self.condition!r}")

    @property
    def has_clean(self) -> bool:
        return self.clean_mask is not None and bool(self.clean_mask.any())


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance scales per condition; 1.0 disables that condition's extra term."""

    text: float = 5.0
    image: float = 1.0
    audio: float = 1.0

    def __post_init__(self) -> None:
        for name in CONDITIONS:
            value = getattr(self, name)
            if not (value == value and 0.0 <= value <= 30.0):
                raise ValueError(f"guidance {name} scale must be in [0, 30], got {value}")

    def scale(self, condition: str) -> float:
        return getattr(self, condition)


@dataclass(frozen=True)
class TextConditioning:
    """Encoded prompt and negative prompt: states (1, Lt, D), masks (1, Lt) bool."""

    states: Tensor
    mask: Tensor
    negative_states: Tensor
    negative_mask: Tensor


@dataclass(frozen=True)
class ExpertSwitch:
    """A second transformer for the low-noise steps (Wan 2.2 A14B): timesteps below `boundary` go to
    `transformer` with its own `guidance`, the others to the first transformer, as diffusers' Wan pipelines do."""

    transformer: OmniTransformer
    boundary: float
    guidance: Guidance


@dataclass
class GuidanceRows:
    """Which conditions each batched row enables, and the scale of each row's term."""

    rows: list[frozenset[str]]
    scales: list[float] = field(default_factory=list)  # scales[i] multiplies rows[i + 1] - rows[i]

    @classmethod
    def build(cls, plans: list[StreamPlan], guidance: Guidance) -> GuidanceRows:
        present = ["text"] + [
            c for c in CONDITIONS[:2] if any(p.condition == c and p.has_clean for p in plans)
        ]
        # Stable order: unit scales first (they need no row of their own), then image, audio, text.
        ordered = sorted(present, key=lambda c: (guidance.scale(c) != 1.0, CONDITIONS.index(c)))
        first = sum(guidance.scale(c) == 1.0 for c in ordered)
        rows = [frozenset(ordered[:k]) for k in range(first, len(ordered) + 1)]
        return cls(rows, [guidance.scale(c) for c in ordered[first:]])

    def combine(self, prediction: Tensor) -> Tensor:
        """(rows * B, ...) predictions -> (B, ...) guided prediction."""
        parts = prediction.chunk(len(self.rows))
        guided = parts[0].float()
        for i, scale in enumerate(self.scales):
            guided = guided + scale * (parts[i + 1].float() - parts[i].float())
        return guided


def build_streams(
    plans: list[StreamPlan], latents: list[Tensor], timestep: Tensor | float, rows: GuidanceRows
) -> list[LatentStream]:
    """Latent streams for all guidance rows stacked along the batch (rows x B)."""
    streams = []
    for plan, x in zip(plans, latents):
        batch, device = x.shape[0], x.device
        mask = (
            plan.clean_mask.to(device)
            if plan.clean_mask is not None
            else torch.zeros(plan.shape[1], dtype=torch.bool, device=device)
        )
        dropped = torch.tensor(
            [plan.condition is not None and plan.condition not in r for r in rows.rows], device=device
        )
        size = batch * len(rows.rows)
        control = None
        if plan.control is not None:
            control = plan.control.to(device, x.dtype)[None].expand(size, *plan.control.shape)
        streams.append(
            noisy_stream(
                plan.modality,
                x.repeat(len(rows.rows), *([1] * (x.ndim - 1))),
                mask[None].expand(size, *mask.shape),
                timestep,
                dropped.repeat_interleave(batch),
                plan.start_seconds,
                plan.frame_seconds,
                control=control,
            )
        )
    return streams


def _clean_where(plan: StreamPlan, x: Tensor) -> Tensor:
    """Write the plan's clean values back into x (B, C, F, ...)."""
    if plan.clean_mask is None:
        return x
    mask = plan.clean_mask.to(x.device)
    if mask.ndim == 1:
        view = mask.view(1, 1, -1, *([1] * (x.ndim - 3)))
    else:  # per token (F, Hp, Wp): expand to latent pixels
        reps = (x.shape[-2] // mask.shape[-2], x.shape[-1] // mask.shape[-1])
        view = mask.repeat_interleave(reps[0], -2).repeat_interleave(reps[1], -1)[None, None]
    return torch.where(view, plan.clean.to(x)[None], x)


def text_rows(text: TextConditioning, rows: GuidanceRows, batch: int) -> tuple[Tensor, Tensor]:
    """Text states and masks for every row: the prompt where "text" is enabled, else the negative prompt."""
    states = [text.states if "text" in r else text.negative_states for r in rows.rows]
    masks = [text.mask if "text" in r else text.negative_mask for r in rows.rows]
    return (
        torch.cat([s.expand(batch, -1, -1) for s in states]),
        torch.cat([m.expand(batch, -1) for m in masks]),
    )


@torch.no_grad()
def denoise(
    transformer: OmniTransformer,
    plans: list[StreamPlan],
    text: TextConditioning,
    scheduler,
    num_steps: int,
    guidance: Guidance,
    generator: torch.Generator | None = None,
    batch_size: int = 1,
    progress: bool | RunProgress = True,
    callback: Callable[[int, list[Tensor]], None] | None = None,
    low_noise: ExpertSwitch | None = None,
    noise: list[Tensor | None] | None = None,
) -> list[Tensor]:
    """Sample every plan's latents jointly; returns one (B, C, ...) fp32 tensor per plan.

    `low_noise` hands the steps below its boundary to a second transformer. `noise` gives a plan's starting
    noise (B, *shape) instead of drawing it from `generator` (None entries are drawn). `progress` is a run's
    bar to count the steps on, or whether to show a bar of its own.
    """
    device = text.states.device
    stages = [(transformer, GuidanceRows.build(plans, guidance))]
    if low_noise is not None:
        stages.append((low_noise.transformer, GuidanceRows.build(plans, low_noise.guidance)))
    schedulers = [copy.deepcopy(scheduler) for _ in plans]
    for s in schedulers:
        s.set_timesteps(num_steps, device=device)
    latents = []
    for i, plan in enumerate(plans):
        given = noise[i] if noise is not None else None
        if given is None:
            given = torch.randn(
                (batch_size, *plan.shape),
                generator=generator,
                device=generator.device if generator else "cpu",
            )
        latents.append(_clean_where(plan, given.float().to(device)))
    texts = [text_rows(text, rows, batch_size) for _, rows in stages]

    bar = progress if isinstance(progress, RunProgress) else RunProgress(bool(progress))
    if bar is not progress:
        bar.expect(num_steps)
    bar.stage("denoising")
    for step, t in enumerate(schedulers[0].timesteps):
        stage = 1 if low_noise is not None and t < low_noise.boundary else 0
        model, rows = stages[stage]
        streams = build_streams(plans, latents, t, rows)
        velocities = model(streams, *texts[stage])
        for i, (plan, v) in enumerate(zip(plans, velocities)):
            guided = rows.combine(v)
            x = schedulers[i].step(guided, t, latents[i], return_dict=False)[0]
            latents[i] = _clean_where(plan, x.float())
        bar.advance()
        if callback is not None:
            callback(step, latents)
    if bar is not progress:
        bar.close()
    return latents
