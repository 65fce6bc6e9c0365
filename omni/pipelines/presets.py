"""Model presets (`omni/configs/<name>.yaml`): the architecture of every pipeline component, validated strictly."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

from omni.conditioning.text import DEFAULT_TEXT_ENCODER, load_text_encoder
from omni.config import ConfigError, apply_overrides, from_dict, load_yaml, resolve_config_path
from omni.models.codecs import GriffinLimVocoder, MelAudioCodec, PixelVideoCodec
from omni.models.transformer import OmniTransformer

SCHEDULERS = ("unipc", "euler")
# Codec families a preset can name: the learned diffusers classes, or the fixed ones that need no training.
VIDEO_CODECS = {"wan": AutoencoderKLWan, "pixel": PixelVideoCodec}
AUDIO_CODECS = {"ltx2": (AutoencoderKLLTX2Audio, LTX2Vocoder), "mel": (MelAudioCodec, GriffinLimVocoder)}


@dataclass(frozen=True)
class SchedulerConfig:
    """Flow-matching sampler: `unipc` (UniPCMultistepScheduler with flow sigmas) or `euler`."""

    kind: Literal["unipc", "euler"] = "unipc"
    shift: float = 3.0


@dataclass(frozen=True)
class PresetConfig:
    """Architecture of a pipeline. Component sections are keyword arguments of their classes: `video_codec`
    picks the vae's (`wan`: AutoencoderKLWan, `pixel`: the exact pixel codec), `audio_codec` the audio_vae's
    and vocoder's (`ltx2`: AutoencoderKLLTX2Audio + LTX2Vocoder, `mel`: log-mel with a Griffin-Lim inverse)."""

    name: str
    transformer: dict[str, Any]
    video_codec: Literal["wan", "pixel"] = "wan"
    audio_codec: Literal["ltx2", "mel"] = "ltx2"
    vae: dict[str, Any] = field(default_factory=dict)
    audio_vae: dict[str, Any] = field(default_factory=dict)
    vocoder: dict[str, Any] = field(default_factory=dict)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    text_encoder: str | None = DEFAULT_TEXT_ENCODER
    pipeline: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from omni.pipelines.pipeline_omni import OmniPipeline

        check_kwargs(OmniTransformer, self.transformer, f"{self.name}.transformer")
        audio_vae_class, vocoder_class = AUDIO_CODECS[self.audio_codec]
        check_kwargs(VIDEO_CODECS[self.video_codec], self.vae, f"{self.name}.vae")
        check_kwargs(audio_vae_class, self.audio_vae, f"{self.name}.audio_vae")
        check_kwargs(vocoder_class, self.vocoder, f"{self.name}.vocoder")
        if self.video_codec == "wan":
            self._check_video_compression()
        component_args = {
            "transformer",
            "scheduler",
            "vae",
            "audio_vae",
            "vocoder",
            "text_encoder",
            "tokenizer",
        }
        check_kwargs(
            OmniPipeline,
            self.pipeline,
            f"{self.name}.pipeline",
            exclude=component_args | {"text_encoder_source"},
        )

    def _check_video_compression(self) -> None:
        """The VAE's declared compression (what the pipeline sizes latents by) must be what its layers do."""
        downsample, dim_mult = self._vae_argument("temperal_downsample"), self._vae_argument("dim_mult")
        built = (2 ** sum(bool(d) for d in downsample), 2 ** (len(dim_mult) - 1))
        declared = self.video_compression()
        if declared != built:
            raise ConfigError(
                f"{self.name}.vae: scale_factor_temporal {declared[0]} and scale_factor_spatial {declared[1]} "
                f"must be what the layers do: temperal_downsample {list(downsample)} compresses time "
                f"{built[0]}x and dim_mult {list(dim_mult)} space {built[1]}x; set scale_factor_temporal: "
                f"{built[0]} and scale_factor_spatial: {built[1]}"
            )

    def video_compression(self) -> tuple[int, int]:
        """(temporal, spatial) compression of the video VAE: latent frames = 1 + (F - 1) / temporal."""
        return (self._vae_argument("scale_factor_temporal"), self._vae_argument("scale_factor_spatial"))

    def _vae_argument(self, key: str) -> Any:
        """The preset's value for an AutoencoderKLWan argument, or the class default where it sets none."""
        cls = VIDEO_CODECS[self.video_codec]
        return self.vae.get(key, inspect.signature(cls.__init__).parameters[key].default)

    @property
    def has_trained_codecs(self) -> bool:
        """Whether the codecs carry learned weights (else the preset alone rebuilds them exactly)."""
        return self.video_codec == "wan" or self.audio_codec == "ltx2"

    def build_codecs(self) -> dict[str, Any]:
        """The preset's vae, audio_vae and vocoder, freshly initialised."""
        audio_vae_class, vocoder_class = AUDIO_CODECS[self.audio_codec]
        return dict(
            vae=VIDEO_CODECS[self.video_codec](**self.vae),
            audio_vae=audio_vae_class(**self.audio_vae),
            vocoder=vocoder_class(**self.vocoder),
        )


def check_kwargs(cls: type, kwargs: dict[str, Any], where: str, exclude: set[str] = frozenset()) -> None:
    """Unknown keyword arguments for `cls` are config errors naming the key and the allowed ones."""
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"} - set(exclude)
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}")


def load_preset(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> PresetConfig:
    """A preset by name (`omni/configs/<name>.yaml`) or path; `overrides` set dotted keys, e.g.
    `{"vae.scale_factor_temporal": 4}`, and are checked like the file's own values."""
    path = resolve_config_path(name_or_path)
    return from_dict(PresetConfig, apply_overrides(load_yaml(path), overrides), where=path.stem)


def build_scheduler(config: SchedulerConfig):
    if config.kind == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=config.shift)
    return UniPCMultistepScheduler(
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=config.shift,
    )


def build_transformer(preset: PresetConfig, **overrides) -> OmniTransformer:
    """The preset's transformer, freshly initialised; `overrides` replace preset arguments."""
    return OmniTransformer(**{**preset.transformer, **overrides})


def build_pipeline(preset: PresetConfig | str, seed: int = 0, text_encoder: bool = True):
    """A pipeline with the preset's architecture and freshly initialised (random) weights."""
    from omni.pipelines.pipeline_omni import OmniPipeline

    if isinstance(preset, str):
        preset = load_preset(preset)
    torch.manual_seed(seed)
    encoder = tokenizer = None
    if text_encoder and preset.text_encoder is not None:
        encoder, tokenizer = load_text_encoder(preset.text_encoder)
    return OmniPipeline(
        transformer=build_transformer(preset),
        scheduler=build_scheduler(preset.scheduler),
        **preset.build_codecs(),
        text_encoder=encoder,
        tokenizer=tokenizer,
        text_encoder_source=preset.text_encoder,
        **preset.pipeline,
    )
