"""One denoising loop for every task: masked joint flow matching with multi-condition guidance.

A task is a list of `StreamPlan`s (`omni.conditioning.plan`, the type training plans with too): the latent
streams to denoise together and, per stream, which latent frames (or tokens) are given clean. Clean tokens
enter the transformer at timestep 0 and are written back after every scheduler step, so the sampler never
changes them.

Guidance composes one term per condition (InstructPix2Pix-style nesting), all rows batched into one forward:

    v = r_0 + sum_i s_i * (r_i - r_{i-1}),   r_i = prediction with conditions 1..i enabled

A condition whose scale is 1 needs no row of its own: conditions are ordered so those come first. Below
`Guidance.min_sigma` (the end of the guidance interval) only the last row, every condition enabled, runs.
Dropping "image" or "audio" removes those clean tokens from attention (`condition_token_mask`, as in
training); dropping "text" swaps in the negative prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from omni.conditioning.plan import StreamPlan
from omni.models.streams import LatentStream, frame_noise, learned_frame_noise
from omni.models.transformer import OmniTransformer
from omni.pipelines.progress import RunProgress

# Guidance conditions, innermost first: clean image / audio tokens, motion-control maps, the prompt.
CONDITIONS = ("image", "audio", "control", "text")
CLEAN_CONDITIONS = ("image", "audio")  # given as clean tokens of a stream (`StreamPlan.condition`)


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance scales per condition; 1.0 disables that condition's extra term.

    `min_sigma` bounds the guidance interval: at noise levels below it the model runs once, with every
    condition enabled, and no term is added. There the noisy latents already show what is drawn, and a guided
    prediction only magnifies the small differences of near-identical rows into speckles and torn outlines.
    """

    text: float = 5.0
    image: float = 1.0
    audio: float = 1.0
    control: float = 1.0
    min_sigma: float = 0.0

    def __post_init__(self) -> None:
        for name in CONDITIONS:
            value = getattr(self, name)
            if not (value == value and 0.0 <= value <= 30.0):
                raise ValueError(f"guidance {name} scale must be in [0, 30], got {value}")
        if isinstance(self.min_sigma, bool) or not (
            isinstance(self.min_sigma, (int, float)) and 0.0 <= self.min_sigma <= 1.0
        ):
            raise ValueError(f"guidance min_sigma must be a noise level in [0, 1], got {self.min_sigma!r}")

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
            c for c in CLEAN_CONDITIONS if any(p.condition == c and p.has_clean for p in plans)
        ]
        if any(p.control is not None for p in plans):
            present.append("control")
        # Stable order: unit scales first (they need no row of their own), then image, audio, control, text.
        ordered = sorted(present, key=lambda c: (guidance.scale(c) != 1.0, CONDITIONS.index(c)))
        first = sum(guidance.scale(c) == 1.0 for c in ordered)
        rows = [frozenset(ordered[:k]) for k in range(first, len(ordered) + 1)]
        return cls(rows, [guidance.scale(c) for c in ordered[first:]])

    def conditioned(self) -> GuidanceRows:
        """The fully conditioned row alone: what runs below the guidance interval."""
        return GuidanceRows(self.rows[-1:])

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
        dropped = {
            c: torch.tensor([c not in r for r in rows.rows], device=device).repeat_interleave(batch)
            for c in CONDITIONS
            if c != "text"
        }
        streams.append(plan.stream(x.repeat(len(rows.rows), *([1] * (x.ndim - 1))), timestep, dropped))
    return streams


def text_rows(text: TextConditioning, rows: GuidanceRows, batch: int) -> tuple[Tensor, Tensor]:
    """Text states and masks for every row: the prompt where "text" is enabled, else the negative prompt."""
    states = [text.states if "text" in r else text.negative_states for r in rows.rows]
    masks = [text.mask if "text" in r else text.negative_mask for r in rows.rows]
    return (
        torch.cat([s.expand(batch, -1, -1) for s in states]),
        torch.cat([m.expand(batch, -1) for m in masks]),
    )


def _self_conditions(model) -> bool:
    """Whether `model` reads its previous x_0 estimate (`OmniTransformer`'s `self_condition`)."""
    config = getattr(model, "config", None)
    return bool(config is not None and config.get("self_condition", False))


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
    for plan in plans:
        if plan.batch != 1:
            raise ValueError(
                f"denoise takes a request's plans, batch 1 for all {batch_size} samples; the {plan.modality} plan "
                f"holds {plan.batch}"
            )
    device = text.states.device
    stages = [(transformer, guidance)]
    if low_noise is not None:
        stages.append((low_noise.transformer, low_noise.guidance))
    # Guidance rows and their text per (stage, inside the guidance interval): every row inside, the fully
    # conditioned row alone below it.
    row_sets = {}
    for stage, (_, stage_guidance) in enumerate(stages):
        rows = GuidanceRows.build(plans, stage_guidance)
        for inside, chosen in ((True, rows), (False, rows.conditioned())):
            row_sets[stage, inside] = (chosen, text_rows(text, chosen, batch_size))
    schedulers = [copy.deepcopy(scheduler) for _ in plans]
    for s in schedulers:
        s.set_timesteps(num_steps, device=device)
    # Noise as the model learned under: a share of it common to a video's latent frames where it was trained so.
    shared = learned_frame_noise(transformer)
    latents = []
    for i, plan in enumerate(plans):
        given = noise[i] if noise is not None else None
        if given is None:
            given = frame_noise((batch_size, *plan.shape), generator, shared)
        latents.append(plan.clean_where(given.float().to(device)))

    bar = progress if isinstance(progress, RunProgress) else RunProgress(bool(progress))
    if bar is not progress:
        bar.expect(num_steps)
    # A self-conditioning model reads its previous step's x_0 estimate (per guidance row); a stage's first
    # step has none, as in the share of training samples that saw none.
    estimates: dict[int, list[Tensor]] = {}
    bar.stage("denoising")
    for step, t in enumerate(schedulers[0].timesteps):
        stage = 1 if low_noise is not None and t < low_noise.boundary else 0
        model, stage_guidance = stages[stage]
        sigma = float(t) / schedulers[0].config.num_train_timesteps  # flow schedulers: t = 1000 sigma
        rows, texts = row_sets[stage, sigma >= stage_guidance.min_sigma]
        streams = build_streams(plans, latents, t, rows)
        if stage in estimates:
            # Past the guidance interval's end only the conditioned row (the last) goes on.
            previous = [e[-batch_size * len(rows.rows) :] for e in estimates[stage]]
            streams = [replace(s, self_condition=e) for s, e in zip(streams, previous)]
        velocities = model(streams, *texts)
        if _self_conditions(model):
            patch = tuple(model.config["patch_size"])
            estimates[stage] = [s.sample_estimate(v, patch) for s, v in zip(streams, velocities)]
        for i, (plan, v) in enumerate(zip(plans, velocities)):
            guided = rows.combine(v)
            x = schedulers[i].step(guided, t, latents[i], return_dict=False)[0]
            latents[i] = plan.clean_where(x.float())
        bar.advance()
        if callback is not None:
            callback(step, latents)
    if bar is not progress:
        bar.close()
    return latents
