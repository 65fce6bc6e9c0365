"""Training recipes (`omni/configs/train/*.yaml`): strict dataclasses, unknown keys are errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omni.config import ConfigError, apply_overrides, from_dict, load_layered_yaml, resolve_config_path
from omni.tasks import TRAINED
from omni.train.objective import ObjectiveConfig, TimestepSampler


@dataclass(frozen=True)
class ModelSection:
    """What is trained: a random-init preset, or weights to start from, plus the codecs the data was encoded with."""

    preset: str | None = None  # omni/configs/<preset>.yaml: architecture, random initialisation
    init: str | None = None  # an OmniPipeline or OmniTransformer folder to start from
    # the codecs the data is encoded with and exports carry: an OmniPipeline folder (VAEs, vocoder, text
    # encoder), or the name of a preset whose codecs need no training (default: the init folder's, the preset's)
    codecs: str | None = None
    # OmniTransformer arguments over the preset's or the init folder's (e.g. {pooled_text: true}); layers
    # that an init folder lacks start at their initialisation
    transformer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSection:
    """Where samples come from: `shards`, a folder written by `omni prepare`, or `stream`, a registered clip
    source (e.g. "toyworld") rendered and encoded on the fly by `num_workers` processes (every batch new)."""

    shards: str | None = None
    stream: str | None = None
    batch_size: int = 8  # per process
    num_workers: int = 0
    frames: int | None = (
        None  # stream: frames per clip (default: the pipeline's default length; 1 for images)
    )
    # stream: the source's own options, e.g. {num_objects: 1} for toy-world scenes with one object each
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.shards is None) == (self.stream is None):
            raise ConfigError(
                "data: give exactly one of shards (an `omni prepare` folder) or stream (e.g. toyworld)"
            )
        if (
            isinstance(self.num_workers, bool)
            or not isinstance(self.num_workers, int)
            or self.num_workers < 0
        ):
            raise ConfigError(f"data.num_workers must be a non-negative integer, got {self.num_workers!r}")
        if self.frames is not None and (
            self.shards is not None or not isinstance(self.frames, int) or self.frames < 1
        ):
            raise ConfigError(f"data.frames is a stream's positive frame count, got {self.frames!r}")
        if self.options and self.shards is not None:
            raise ConfigError(
                f"data.options are a stream's source options; shards take none, got {self.options}"
            )


@dataclass(frozen=True)
class OptimSection:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    eps: float = 1e-8
    warmup_steps: int = 100
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    # parameter-name glob -> learning-rate multiplier, e.g. {"*control_embedding*": 10}: a layer that starts
    # at zero next to trained weights (motion control, a new convolution) learns at its own pace; 0 freezes
    # the matching weights (no gradient, no optimizer state). The first matching glob wins; a glob that
    # matches no parameter is an error.
    lr_scale: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pattern, scale in self.lr_scale.items():
            if (
                not isinstance(pattern, str)
                or isinstance(scale, bool)
                or not isinstance(scale, (int, float))
                or not math.isfinite(scale)
                or scale < 0
            ):
                raise ConfigError(
                    "optim.lr_scale maps a parameter-name glob to a multiplier >= 0 (0 freezes the weights), "
                    f"got {pattern!r}: {scale!r}"
                )


@dataclass(frozen=True)
class ParallelSection:
    """Applied from outside the model by `omni.train.parallelize`."""

    fsdp: bool = True  # fully_shard each block when more than one process runs
    activation_checkpointing: bool = False
    compile: bool = False  # torch.compile each block
    sequence_parallel: int = 1  # Ulysses degree (heads must divide by it)
    mixed_precision: Literal["bf16", "fp32"] = "fp32"


@dataclass(frozen=True)
class EMASection:
    """The exported weights' average: a copy of the weights until `start_step`, then an average whose decay
    is (n / (n + 1))^2 over the n steps since, up to `decay`: each step's weights count in proportion to
    its step number (a power-function EMA), so an export a few hundred steps after the start averages the
    recent half of them instead of keeping mostly the weights of `start_step` (82% of them 200 steps on at a
    fixed 0.999); from about 2000 steps on the decay is `decay`."""

    decay: float = 0.999
    start_step: int = 0

    def decay_at(self, step: int) -> float:
        """The decay of the update after optimizer step `step` (0 before `start_step`: the weights copied)."""
        if step < self.start_step:
            return 0.0
        n = step - self.start_step
        return min(self.decay, (n / (n + 1)) ** 2)


@dataclass(frozen=True)
class CheckpointSection:
    dir: str = "checkpoints/run"
    every: int = 500
    keep_last: int = 3
    export_every: int = 0  # export the EMA model as an OmniPipeline folder every N steps (0: at the end only)


@dataclass(frozen=True)
class LogSection:
    every: int = 10
    jsonl: str | None = None  # default: <checkpoint dir>/log.jsonl
    tensorboard: bool = False


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection
    data: DataSection
    steps: int = 1000
    seed: int = 0
    tasks: dict[str, float] = field(default_factory=lambda: {"t2av": 1.0})
    dropout: dict[str, float] = field(default_factory=lambda: {"text": 0.1, "image": 0.1, "audio": 0.1})
    loss_weights: dict[str, float] = field(default_factory=lambda: {"video": 1.0, "image": 1.0, "audio": 1.0})
    timesteps: TimestepSampler = field(default_factory=TimestepSampler)
    # probability of conditioning on a clip's known subject trajectory / camera path (motion control)
    control: dict[str, float] = field(default_factory=lambda: {"trajectory": 0.5, "camera": 0.5})
    # probability of a sample seeing the model's own x_0 estimate (needs `model.transformer.self_condition`)
    self_condition: float = 0.0
    # extra loss weight inside the clips' subject boxes (video and image latents; 0: an even loss)
    focus_weight: float = 0.0
    # ... on samples noised to at most this level (1: all; where x_t shows the subject, the weight biases nothing)
    focus_max_sigma: float = 1.0
    optim: OptimSection = field(default_factory=OptimSection)
    parallel: ParallelSection = field(default_factory=ParallelSection)
    ema: EMASection = field(default_factory=EMASection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    log: LogSection = field(default_factory=LogSection)

    def __post_init__(self) -> None:
        if (self.model.preset is None) == (self.model.init is None):
            raise ConfigError(
                "model: give exactly one of preset (random init) or init (a folder to start from)"
            )
        unknown = sorted(set(self.tasks) - set(TRAINED))
        if unknown:
            raise ConfigError(f"tasks: unknown task(s) {unknown}; allowed: {list(TRAINED)}")
        if not any(w > 0 for w in self.tasks.values()):
            raise ConfigError("tasks: at least one task needs a positive weight")
        bad = sorted(set(self.dropout) - {"text", "image", "audio"})
        if bad:
            raise ConfigError(f"dropout: unknown condition(s) {bad}; allowed: ['audio', 'image', 'text']")
        bad = sorted(set(self.loss_weights) - {"video", "image", "audio"})
        if bad:
            raise ConfigError(f"loss_weights: unknown modality {bad}; allowed: ['audio', 'image', 'video']")
        bad = sorted(set(self.control) - {"trajectory", "camera"})
        if bad:
            raise ConfigError(f"control: unknown kind(s) {bad}; allowed: ['camera', 'trajectory']")
        probabilities = {
            **{f"dropout.{k}": v for k, v in self.dropout.items()},
            **{f"control.{k}": v for k, v in self.control.items()},
            "self_condition": self.self_condition,
        }
        for name, p in probabilities.items():
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name}: {p} is not a probability in [0, 1]")
        if not self.focus_weight >= 0:
            raise ConfigError(f"focus_weight: {self.focus_weight} must be a number >= 0")
        if not 0.0 < self.focus_max_sigma <= 1.0:
            raise ConfigError(f"focus_max_sigma: {self.focus_max_sigma} must be in (0, 1]")
        if self.steps < 1 or self.data.batch_size < 1:
            raise ConfigError(
                f"steps and data.batch_size must be positive, got {self.steps} and {self.data.batch_size}"
            )

    @property
    def objective(self) -> ObjectiveConfig:
        return ObjectiveConfig(
            tasks=dict(self.tasks),
            dropout_text=self.dropout.get("text", 0.0),
            dropout_image=self.dropout.get("image", 0.0),
            dropout_audio=self.dropout.get("audio", 0.0),
            loss_weights=dict(self.loss_weights),
            timesteps=self.timesteps,
            trajectory_probability=self.control.get("trajectory", 0.0),
            camera_probability=self.control.get("camera", 0.0),
            self_condition=self.self_condition,
            focus_weight=self.focus_weight,
            focus_max_sigma=self.focus_max_sigma,
        )


def load_train_config(name_or_path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Load a recipe from `omni/configs/train/<name>.yaml` or a path, over the recipe it names as its `base:`
    if any (`load_layered_yaml`); `overrides` (`{"section.key": value}`) go over the result."""
    data = load_layered_yaml(resolve_config_path(name_or_path, "train"), TrainConfig, "train")
    return from_dict(TrainConfig, apply_overrides(data, overrides))
