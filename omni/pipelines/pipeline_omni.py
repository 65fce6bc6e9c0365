"""OmniPipeline: text, image, audio and video in; video, images and audio out, from one transformer.

Every task is masked joint denoising (`omni.pipelines.sampling`): the task decides which latent streams
exist and which of their frames are given clean. The call runs in numbered phases, as diffusers pipelines do:
check inputs -> encode the prompt -> encode the conditions -> plan the streams -> denoise -> decode.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLWan, DiffusionPipeline
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from diffusers.utils import BaseOutput
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from torch import Tensor

from omni.audio.mel import MelConfig, MelSpectrogram
from omni.conditioning.motion import CameraPath, Trajectory
from omni.conditioning.text import (
    DEFAULT_TEXT_ENCODER,
    PROMPT_CLEANING,
    clean_prompt,
    encode_text,
    load_text_encoder,
)
from omni.config import read_json
from omni.media import geometry
from omni.models.codecs import GriffinLimVocoder, MelAudioCodec, PixelVideoCodec
from omni.models.transformer import OmniTransformer
from omni.models.weights import check_finite_weights, check_safetensors_only, check_weights_fit
from omni.pipelines import inputs, tasks
from omni.pipelines.memory import check_fits
from omni.pipelines.progress import RunProgress
from omni.pipelines.sampling import ExpertSwitch, Guidance, TextConditioning, denoise
from omni.tasks import INPUTS, OFFERED, TASKS, get_task, tasks_taking

ImageInput = np.ndarray | Image.Image | Tensor
logger = diffusers_logging.get_logger(__name__)


@dataclass
class OmniPipelineOutput(BaseOutput):
    """Generated media.

    frames: (B, F, H, W, 3) uint8 video, or None. images: (B, H, W, 3) uint8, or None.
    audio: (B, C, N) float32 in [-1, 1], or None. fps / sample_rate describe them.
    timings: seconds per stage (encode, denoise, decode).
    latents: the denoised, normalised latents of the video (or image) stream, (B, C, f, h, w) fp32, as
        diffusers pipelines return them with output_type="latent"; None for extend (made chunk by chunk).
    """

    frames: np.ndarray | None
    images: np.ndarray | None
    audio: np.ndarray | None
    fps: float
    sample_rate: int
    timings: dict[str, float] = field(default_factory=dict)
    latents: Tensor | None = None


class OmniPipeline(DiffusionPipeline):
    """Joint video + image + audio generation with one `OmniTransformer`.

    Components: transformer, scheduler (a flow-matching diffusers scheduler), vae (`AutoencoderKLWan`, or the
    exact `PixelVideoCodec`), audio_vae (`AutoencoderKLLTX2Audio` or `MelAudioCodec`, on log-mel), vocoder
    (`LTX2Vocoder` or `GriffinLimVocoder`), text_encoder and tokenizer.
    `text_encoder_source` names where the text encoder comes from (the packaged all-MiniLM-L6-v2 or a local
    folder); when set, `save_pretrained` records the source instead of copying the encoder's weights.
    A pipeline without audio_vae and vocoder (or whose transformer has no audio expert) is video-only: it runs
    every video task and refuses the audio ones by name.

    Checkpoint conventions live in the config: `prompt_cleaning` ("wan": diffusers' Wan prompt cleaning),
    `max_text_tokens` (with the transformer's `mask_text_padding`: Wan attends to 512 zero-padded tokens), and
    `boundary_ratio` with `transformer_2` (Wan 2.2 A14B: `transformer_2` denoises every timestep below
    boundary_ratio x the scheduler's training timesteps, `transformer` the ones above, as diffusers switches).
    """

    model_cpu_offload_seq = "text_encoder->transformer->transformer_2->vae->audio_vae->vocoder"
    _optional_components = ["vae", "audio_vae", "vocoder", "text_encoder", "tokenizer", "transformer_2"]

    def __init__(
        self,
        transformer: OmniTransformer,
        scheduler,
        vae: AutoencoderKLWan | PixelVideoCodec | None = None,
        audio_vae: AutoencoderKLLTX2Audio | MelAudioCodec | None = None,
        vocoder: LTX2Vocoder | GriffinLimVocoder | None = None,
        text_encoder=None,
        tokenizer=None,
        transformer_2: OmniTransformer | None = None,
        text_encoder_source: str | None = DEFAULT_TEXT_ENCODER,
        max_text_tokens: int = 64,
        default_fps: float = 16.0,
        default_height: int = 64,
        default_width: int = 64,
        default_seconds: float = 2.0,
        default_steps: int = 30,
        default_guidance: float = 5.0,
        default_guidance_min_sigma: float = 0.0,
        mel_n_fft: int = 1024,
        mel_f_min: float = 0.0,
        mel_f_max: float | None = None,
        audio_latents_mean: list[float] | None = None,
        audio_latents_std: list[float] | None = None,
        prompt_cleaning: str | None = None,
        boundary_ratio: float | None = None,
    ):
        super().__init__()
        if prompt_cleaning not in PROMPT_CLEANING:
            raise ValueError(
                f"prompt_cleaning must be one of {list(PROMPT_CLEANING)}, got {prompt_cleaning!r}"
            )
        if (transformer_2 is None) != (boundary_ratio is None):
            raise ValueError(
                f"transformer_2 and boundary_ratio go together (got boundary_ratio={boundary_ratio!r} "
                f"{'with' if transformer_2 is not None else 'without'} a transformer_2)"
            )
        if boundary_ratio is not None and not 0.0 < boundary_ratio < 1.0:
            raise ValueError(f"boundary_ratio must be in (0, 1), got {boundary_ratio!r}")
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            vae=vae,
            audio_vae=audio_vae,
            vocoder=vocoder,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer_2=transformer_2,
        )
        self.register_to_config(
            text_encoder_source=text_encoder_source,
            max_text_tokens=max_text_tokens,
            default_fps=float(default_fps),
            default_height=default_height,
            default_width=default_width,
            default_seconds=default_seconds,
            default_steps=default_steps,
            default_guidance=default_guidance,
            default_guidance_min_sigma=default_guidance_min_sigma,
            mel_n_fft=mel_n_fft,
            mel_f_min=mel_f_min,
            mel_f_max=mel_f_max,
            audio_latents_mean=audio_latents_mean,
            audio_latents_std=audio_latents_std,
            prompt_cleaning=prompt_cleaning,
            boundary_ratio=boundary_ratio,
        )
        self._mel = None

    # ----------------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> OmniPipeline:
        """Load from a local folder (safetensors only; never from a hub)."""
        folder = Path(pretrained_model_name_or_path)
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(f"{folder}: not an omni pipeline folder (no model_index.json)")
        check_safetensors_only(folder)
        index = read_json(folder / "model_index.json", "the pipeline index")
        name = index.get("_class_name")
        if name != "OmniPipeline":
            hint = (
                f"this is a diffusers Wan folder ({name}); run `omni convert --from wan {folder} OUT` once and "
                "load OUT"
                if str(name).startswith("Wan")
                else f"its model_index.json names {name!r}, not OmniPipeline"
            )
            raise ValueError(f"{folder}: not an omni pipeline folder: {hint}")
        _check_component_weights(folder, index)
        source = index.get("text_encoder_source")
        if "text_encoder" not in kwargs and source and not (folder / "text_encoder").is_dir():
            kwargs["text_encoder"], kwargs["tokenizer"] = load_text_encoder(source)
        kwargs.setdefault("use_safetensors", True)
        kwargs.setdefault("local_files_only", True)
        diffusers_logging.disable_progress_bar()  # a handful of small local components: no bar needed
        try:
            pipe = super().from_pretrained(str(folder), **kwargs)
        finally:
            diffusers_logging.enable_progress_bar()
        for name, component in pipe.components.items():
            if isinstance(component, torch.nn.Module):
                check_finite_weights(component, str(folder / name))
        pipe.check_components(folder)
        return pipe

    def check_components(self, where: str | Path = "this pipeline") -> None:
        """Raise a ValueError when two parts disagree on a channel count, naming both numbers."""
        t = self.transformer.config
        pairs = []
        if t.out_channels != t.in_channels:
            pairs.append(
                ("transformer out_channels", t.out_channels, "transformer in_channels", t.in_channels)
            )
        if self.vae is not None and getattr(self.vae.config, "z_dim", None) is not None:
            pairs.append(("transformer in_channels", t.in_channels, "vae z_dim", self.vae.config.z_dim))
        if self.transformer_2 is not None:
            t2 = self.transformer_2.config
            for key in ("in_channels", "out_channels", "text_dim", "patch_size"):
                first, second = (v if isinstance(v, int) else list(v) for v in (t[key], t2[key]))
                pairs.append((f"transformer {key}", first, f"transformer_2 {key}", second))
        if self.text_encoder is not None:
            cfg = self.text_encoder.config
            width = getattr(cfg, "d_model", None) or getattr(cfg, "hidden_size", None)
            if width is not None:
                pairs.append(("transformer text_dim", t.text_dim, "text_encoder hidden size", width))
        # Audio codecs other than AutoencoderKLLTX2Audio may describe themselves differently: what a
        # codec does not declare is not checked.
        audio = self.audio_vae.config if self.audio_vae is not None else None
        channels, bins = getattr(audio, "latent_channels", None), getattr(audio, "mel_bins", None)
        ratio = getattr(self.audio_vae, "mel_compression_ratio", None)
        if self.transformer.has_audio_expert and None not in (channels, bins, ratio):
            latent = f"audio_vae latent_channels x latent mel bins ({channels} x {bins // ratio})"
            pairs.append(
                ("transformer audio_in_channels", t.audio_in_channels, latent, channels * (bins // ratio))
            )
        outputs, vocoder_in = getattr(audio, "output_channels", None), None
        if self.vocoder is not None:
            vocoder_in = getattr(self.vocoder.config, "in_channels", None)
        if None not in (outputs, bins, vocoder_in):
            mel = f"audio_vae output_channels x mel_bins ({outputs} x {bins})"
            pairs.append(("vocoder in_channels", vocoder_in, mel, outputs * bins))
        for name, value, other, other_value in pairs:
            if value != other_value:
                raise ValueError(
                    f"{where}: {name} is {value} but {other} is {other_value}; the parts do not fit together"
                )

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> None:
        """Save every component in safetensors; a text encoder with a recorded source is referenced, not copied."""
        kwargs["safe_serialization"] = True
        if not self.config.text_encoder_source:
            return super().save_pretrained(save_directory, **kwargs)
        encoder, tokenizer = self.text_encoder, self.tokenizer
        self.register_modules(text_encoder=None, tokenizer=None)
        try:
            super().save_pretrained(save_directory, **kwargs)
        finally:
            self.register_modules(text_encoder=encoder, tokenizer=tokenizer)

    @property
    def _execution_device(self) -> torch.device:
        """Where the models run. diffusers looks for offload hooks by walking every module of every component
        (about 15 ms a call); `pin_execution_device` skips that where nothing is offloaded (data encoding)."""
        pinned = getattr(self, "_pinned_device", None)
        return pinned if pinned is not None else DiffusionPipeline._execution_device.fget(self)

    def pin_execution_device(self, device: torch.device | str | None) -> None:
        """Run on `device` without searching for offload hooks at every call (None: search again)."""
        self._pinned_device = None if device is None else torch.device(device)

    # ------------------------------------------------------------------------------------- geometry

    @property
    def vae_temporal(self) -> int:
        return self.vae.config.scale_factor_temporal

    @property
    def pixels_per_token(self) -> int:
        """Height/width in pixels covered by one video token."""
        return self.vae.config.scale_factor_spatial * self.transformer.config.patch_size[1]

    @property
    def mel_config(self) -> MelConfig:
        cfg = self.audio_vae.config
        return MelConfig(
            sample_rate=cfg.sample_rate,
            n_fft=self.config.mel_n_fft,
            hop_length=cfg.mel_hop_length,
            n_mels=cfg.mel_bins,
            f_min=self.config.mel_f_min,
            f_max=self.config.mel_f_max,
        )

    @property
    def sample_rate(self) -> int:
        """Output audio sample rate; 0 for a pipeline without a vocoder."""
        return self.vocoder.config.output_sampling_rate if self.vocoder is not None else 0

    @property
    def has_audio(self) -> bool:
        """Whether this pipeline can hear and make sound: an audio expert, an audio VAE and a vocoder."""
        return self.transformer.has_audio_expert and self.audio_vae is not None and self.vocoder is not None

    @property
    def audio_frame_seconds(self) -> float:
        """Seconds between audio latent frames."""
        return (
            self.audio_vae.temporal_compression_ratio
            * self.mel_config.hop_length
            / self.mel_config.sample_rate
        )

    def audio_latent_frames(self, num_samples: int) -> int:
        """Latent frames whose decoded mel (4(L - 1) + 1 frames) covers `num_samples` samples."""
        mel_frames = self.mel_config.num_frames(num_samples)
        return math.ceil((mel_frames - 1) / self.audio_vae.temporal_compression_ratio) + 1

    # --------------------------------------------------------------------------------- encode/decode

    def encode_prompt(
        self,
        prompt: str | None,
        negative_prompt: str = "",
        prompt_embeds: Tensor | None = None,
        negative_prompt_embeds: Tensor | None = None,
    ) -> TextConditioning:
        """Text states of the prompt and the negative prompt, cleaned as the checkpoint expects; a prompt longer
        than the text encoder takes is cut, with a warning saying so.

        `prompt_embeds` / `negative_prompt_embeds` (1, Lt, text_dim), as diffusers pipelines take them, replace
        the text encoder's output; every position of given embeddings counts as real text.
        """
        given = [prompt_embeds, negative_prompt_embeds]
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("give a prompt or prompt_embeds (not both)")
        texts = [prompt, negative_prompt]
        encoded = {}
        missing = [i for i in (0, 1) if given[i] is None]
        if missing:
            if self.text_encoder is None or self.tokenizer is None:
                raise ValueError(
                    "this pipeline has no text encoder; load one with omni.conditioning.load_text_encoder"
                )
            limit = self.config.max_text_tokens
            for i in missing:
                name = ("prompt", "negative prompt")[i]
                inputs.check_text(name, texts[i])
                tokens = len(self.tokenizer(texts[i], verbose=False)["input_ids"])
                if tokens > limit:
                    warnings.warn(
                        f"the {name} is {tokens} tokens long; the text encoder keeps the first {limit}",
                        stacklevel=3,
                    )
            cleaned = [clean_prompt(texts[i], self.config.prompt_cleaning) for i in missing]
            states, mask = encode_text(
                self.text_encoder, self.tokenizer, cleaned, self.config.max_text_tokens
            )
            encoded = {i: (states[k : k + 1], mask[k : k + 1]) for k, i in enumerate(missing)}
        parts = []
        for i, name in ((0, "prompt_embeds"), (1, "negative_prompt_embeds")):
            if given[i] is not None:
                embeds = given[i]
                if (
                    embeds.ndim != 3
                    or embeds.shape[0] != 1
                    or embeds.shape[2] != self.transformer.config.text_dim
                ):
                    raise ValueError(
                        f"{name} must be (1, tokens, {self.transformer.config.text_dim}), got {tuple(embeds.shape)}"
                    )
                encoded[i] = (embeds, torch.ones(embeds.shape[:2], dtype=torch.bool))
            states, mask = encoded[i]
            parts += [
                states.to(self._execution_device, self.transformer.dtype),
                mask.to(self._execution_device),
            ]
        if parts[0].shape[1] != parts[2].shape[1]:
            raise ValueError(
                f"the prompt has {parts[0].shape[1]} text positions and the negative prompt {parts[2].shape[1]}; "
                f"give both as embeddings of one length (this model encodes {self.config.max_text_tokens})"
            )
        return TextConditioning(*parts)

    def _video_stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.vae.config
        mean = torch.tensor(cfg.latents_mean[: cfg.z_dim], device=like.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(cfg.latents_std[: cfg.z_dim], device=like.device).view(1, -1, 1, 1, 1)
        return mean, std

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray) -> Tensor:
        """(F, H, W, 3) uint8 -> normalised latents (1, C, 1 + (F - 1) / t, H / s, W / s), the VAE compressing time by t and space by s."""
        x = inputs.frames_to_tensor(frames).to(self._execution_device, self.vae.dtype)
        latents = self.vae.encode(x).latent_dist.mode().float()
        mean, std = self._video_stats(latents)
        return (latents - mean) / std

    @torch.no_grad()
    def decode_video(self, latents: Tensor) -> np.ndarray:
        """Normalised latents (B, C, f, h, w) -> (B, F, H, W, 3) uint8. Large frames decode in spatial tiles
        (the causal decoder already goes latent frame by latent frame), so peak memory stays bounded."""
        spatial = self.vae.config.scale_factor_spatial
        large = latents.shape[-2] * latents.shape[-1] * spatial**2 > TILED_DECODE_PIXELS
        if large != getattr(self.vae, "use_tiling", False):
            self.vae.enable_tiling() if large else self.vae.disable_tiling()
        mean, std = self._video_stats(latents)
        x = self.vae.decode((latents * std + mean).to(self.vae.dtype)).sample
        return inputs.tensor_to_frames(x)

    def _audio_stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        channels = like.shape[1]
        mean = self.config.audio_latents_mean or [0.0] * channels
        std = self.config.audio_latents_std or [1.0] * channels
        view = (1, channels, 1, 1)
        return torch.tensor(mean, device=like.device).view(view), torch.tensor(std, device=like.device).view(
            view
        )

    def mel(self, waveform: Tensor) -> Tensor:
        """(B, C, N) waveform -> (B, C, T, n_mels) log-mel."""
        if self._mel is None or self._mel.config != self.mel_config:
            self._mel = MelSpectrogram(self.mel_config)
        return self._mel.to(waveform.device)(waveform)

    @torch.no_grad()
    def encode_audio(self, audio: np.ndarray) -> Tensor:
        """(C, N) float32 at the audio VAE's sample rate -> normalised latents (1, C', L, M),
        L = `audio_latent_frames(N)`: the audio is padded with silence to whole latent frames."""
        frames = self.audio_latent_frames(audio.shape[-1])
        samples = (1 + self.audio_vae.temporal_compression_ratio * (frames - 1)) * self.mel_config.hop_length
        waveform = torch.from_numpy(np.ascontiguousarray(audio))[None].to(self._execution_device)
        waveform = torch.nn.functional.pad(waveform, (0, max(0, samples - waveform.shape[-1])))
        mel = self.mel(waveform).to(self.audio_vae.dtype)
        latents = self.audio_vae.encode(mel).latent_dist.mode().float()
        mean, std = self._audio_stats(latents)
        return (latents - mean) / std

    @torch.no_grad()
    def decode_audio(self, latents: Tensor, num_samples: int) -> np.ndarray:
        """Normalised latents (B, C', T, M) -> (B, C, num_samples) float32 waveform."""
        mean, std = self._audio_stats(latents)
        mel = self.audio_vae.decode((latents * std + mean).to(self.audio_vae.dtype)).sample
        waveform = self.vocoder(mel.to(self.vocoder.dtype)).float()
        if waveform.shape[-1] < num_samples:
            waveform = torch.nn.functional.pad(waveform, (0, num_samples - waveform.shape[-1]))
        return waveform[..., :num_samples].clamp(-1, 1).cpu().numpy()

    # ----------------------------------------------------------------------------------------- call

    def __call__(
        self,
        prompt: str | None,
        task: str = "t2av",
        *,
        image: ImageInput | None = None,
        last_image: ImageInput | None = None,
        key_frames: list[tuple[float, ImageInput]] | None = None,
        references: list[ImageInput] | None = None,
        audio: np.ndarray | Tensor | None = None,
        audio_sample_rate: int | None = None,
        video: np.ndarray | None = None,
        video_fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        modality: str = "both",
        trajectory: Trajectory | None = None,
        camera: CameraPath | str | None = None,
        seconds: float | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        image_guidance_scale: float = 1.0,
        audio_guidance_scale: float = 1.0,
        control_guidance_scale: float = 1.0,
        guidance_min_sigma: float | None = None,
        negative_prompt: str = "",
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        chunk_seconds: float | None = None,
        progress: bool = True,
        latents: Tensor | None = None,
        prompt_embeds: Tensor | None = None,
        negative_prompt_embeds: Tensor | None = None,
        guidance_scale_2: float | None = None,
    ) -> OmniPipelineOutput:
        """Generate media for `task` (its entry in `omni.tasks`): t2v t2i t2a t2av i2v v2a a2v extend retake r2i.

        A video-only pipeline (`has_audio` False) runs t2v, t2i, i2v, extend and retake on the video alone and
        refuses t2a, t2av, a2v and v2a.

        Args:
            prompt: what to generate (None when `prompt_embeds` are given).
            image: the first frame (i2v). last_image: the last frame. key_frames: (seconds, image) pairs the
                video must pass through. Images are (H, W, 3) uint8 arrays, PIL images or float tensors.
            references: images of the subject (subject memory), kept as clean tokens outside the clip.
            audio, audio_sample_rate: the driving track (a2v), or the soundtrack of `video` (extend, retake).
            video, video_fps: (F, H, W, 3) uint8: the clip to add sound to (v2a), continue (extend) or fix
                (retake).
            start, end, modality: retake regenerates [start, end] seconds of "video", "audio" or "both" and
                keeps everything else exactly as given.
            trajectory / camera: motion control: the subject's path, the camera's path or a preset name.
            seconds: duration (extend: seconds to add); the output has round(seconds * fps) frames.
            num_frames: exact frame count instead of seconds: 1 + k times the VAE's temporal factor (`vae_temporal`).
            guidance_scale, image_guidance_scale, audio_guidance_scale: guidance per condition.
            control_guidance_scale: guidance on the motion control (trajectory, camera): above 1 the sampler
                pushes away from its prediction without the control maps, as it does from the negative prompt.
            guidance_min_sigma: the guidance interval's end: below this noise level every step runs the model
                once, with every condition, unguided (default: the model's `default_guidance_min_sigma`).
            seed / generator: the noise; the same seed and inputs give the same output.
            chunk_seconds: extend: longest piece generated at once (default: the model's default length).
            latents: (1, C, f, h, w) starting noise of the video (or image) latents instead of the seed's, as
                diffusers pipelines take it; not for extend, which draws noise chunk by chunk. Used as given:
                for a model with `shared_frame_noise`, draw it with `omni.models.streams.frame_noise`.
            prompt_embeds, negative_prompt_embeds: (1, Lt, text_dim) text states instead of the text encoder's.
            guidance_scale_2: text guidance of `transformer_2`'s low-noise steps (default: guidance_scale).
        """
        # 1. Check inputs.
        cfg = self.config
        entry = get_task(task)
        fps = inputs.check_fps(fps if fps is not None else cfg.default_fps)
        height, width = inputs.check_size(
            cfg.default_height if height is None else height,
            cfg.default_width if width is None else width,
            self.pixels_per_token,
        )
        steps = cfg.default_steps if num_inference_steps is None else num_inference_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
            raise ValueError(f"num_inference_steps must be an integer in [1, 1000], got {steps!r}")
        guidance = Guidance(
            text=guidance_scale if guidance_scale is not None else cfg.default_guidance,
            image=image_guidance_scale,
            audio=audio_guidance_scale,
            control=control_guidance_scale,
            min_sigma=cfg.default_guidance_min_sigma if guidance_min_sigma is None else guidance_min_sigma,
        )
        if control_guidance_scale != 1.0 and trajectory is None and camera is None:
            raise ValueError(
                f"control_guidance_scale {control_guidance_scale} guides the motion control; give a trajectory or "
                "a camera, or leave it at 1"
            )
        given = dict(
            image=image,
            last_image=last_image,
            key_frames=key_frames,
            references=references,
            audio=audio,
            video=video,
            start=start,
            trajectory=trajectory,
            camera=camera,
        )
        self._check_conditions(task, given, audio_sample_rate, video_fps, end, modality)
        if latents is not None and entry.length == "added":
            raise ValueError("extend draws its noise chunk by chunk; drop latents (use seed or generator)")
        if guidance_scale_2 is not None and self.transformer_2 is None:
            raise ValueError("guidance_scale_2 needs a pipeline with transformer_2 (Wan 2.2 A14B); drop it")
        if generator is None:
            generator = torch.Generator("cpu").manual_seed(0 if seed is None else int(seed))
        request = self._request(
            task, fps, height, width, seconds, num_frames, given, audio_sample_rate, video_fps, end, modality
        )

        # 2. Encode the prompt.
        start_time = time.perf_counter()
        text = self.encode_prompt(prompt, negative_prompt, prompt_embeds, negative_prompt_embeds)
        timings = {"encode": time.perf_counter() - start_time}
        low_noise = None
        if self.transformer_2 is not None:
            low_noise = ExpertSwitch(
                self.transformer_2,
                self.config.boundary_ratio * self.scheduler.config.num_train_timesteps,
                Guidance(
                    text=guidance.text if guidance_scale_2 is None else guidance_scale_2,
                    image=image_guidance_scale,
                    audio=audio_guidance_scale,
                    control=control_guidance_scale,
                    min_sigma=guidance.min_sigma,
                ),
            )
        bar = RunProgress(progress)
        run = dict(
            text=text,
            steps=steps,
            guidance=guidance,
            generator=generator,
            progress=bar,
            timings=timings,
            low_noise=low_noise,
        )

        # 3-6. Encode the conditions, plan the streams, denoise, decode; extension goes chunk by chunk.
        try:
            if entry.length == "added":
                frames, audio_out = self._extend(request, seconds, chunk_seconds, **run)
                audio_out = None if audio_out is None else audio_out[None]
                return OmniPipelineOutput(frames[None], None, audio_out, fps, self.sample_rate, timings)
            frames, images, audio_out, latents = self._generate(request, latents=latents, **run)
        finally:
            bar.close()
        frames, audio_out = tasks.assemble(request, frames, audio_out)
        return OmniPipelineOutput(
            None if frames is None else frames[None],
            images,
            None if audio_out is None else audio_out[None],
            fps,
            self.sample_rate,
            timings,
            latents,
        )

    def _generate(
        self,
        request: tasks.Request,
        text,
        steps,
        guidance,
        generator,
        progress,
        timings,
        low_noise,
        latents=None,
    ):
        """One chunk: (frames (F, H, W, 3) | None, images (1, H, W, 3) | None, audio (C, N) | None, the first
        stream's denoised latents)."""
        rows = 1 + sum(getattr(guidance, name) != 1.0 for name in ("text", "image", "audio"))
        check_fits(
            self,
            request.frames if request.has_video else 0,
            request.height,
            request.width,
            request.num_samples / request.sample_rate if request.has_audio else 0.0,
            rows,
            request.fps,
        )
        start = time.perf_counter()
        progress.start_chunk()
        progress.stage("encoding the conditions")
        plans = tasks.plan(self, request)
        _add(timings, "encode", time.perf_counter() - start)
        noise = None
        if latents is not None:
            expected = (1, *plans[0].shape)
            if tuple(latents.shape) != expected:
                raise ValueError(
                    f"latents must have shape {expected} for this request, got {tuple(latents.shape)}"
                )
            noise = [latents] + [None] * (len(plans) - 1)
        if not self.transformer.config.per_token_timesteps and any(p.has_clean for p in plans):
            logger.warning(
                "this model learned one noise level per sample (per_token_timesteps: false, e.g. Wan 2.1): "
                "given frames and images are outside its training and may be followed loosely"
            )
        progress.expect(steps + sum(plan.output for plan in plans))
        start = time.perf_counter()
        latents = denoise(
            self.transformer,
            plans,
            text,
            self.scheduler,
            steps,
            guidance,
            generator,
            progress=progress,
            low_noise=low_noise,
            noise=noise,
        )
        _add(timings, "denoise", time.perf_counter() - start)
        start = time.perf_counter()
        frames = images = audio = None
        for plan, x in zip(plans, latents):
            if not plan.output:
                continue
            if not bool(torch.isfinite(x).all()):
                raise FloatingPointError(
                    f"the denoised {plan.modality} latents hold NaN or infinite values, so nothing is decoded: "
                    f"the model's weights are damaged or {self.transformer.dtype} overflowed (try float32)"
                )
            progress.stage(f"decoding {plan.modality}")
            if plan.modality == "video":
                frames = self.decode_video(x)[0, : request.frames]
            elif plan.modality == "image":
                images = self.decode_video(x)[:, 0]
            else:
                audio = self.decode_audio(x, request.num_samples)[0]
            progress.advance()
        _add(timings, "decode", time.perf_counter() - start)
        return frames, images, audio, latents[0]

    def _extend(self, request: tasks.Request, seconds, chunk_seconds, **run) -> tuple[np.ndarray, np.ndarray]:
        """Continue the given clip by `seconds`, chunk by chunk: each chunk sees the current clip's last
        latent frames (and their audio) as clean context and adds up to `chunk_seconds`. Given and earlier
        frames are never re-decoded, so nothing drifts; audio joins are crossfaded."""
        fps, rate = request.fps, request.sample_rate
        total = round(
            inputs.check_seconds(seconds if seconds is not None else self.config.default_seconds, fps) * fps
        )
        chunk_seconds = self.config.default_seconds if chunk_seconds is None else chunk_seconds
        chunk = round(inputs.check_seconds(chunk_seconds, fps) * fps)
        frames, audio = request.video, request.audio  # audio is None on a video-only pipeline
        context = min(1 + self.vae_temporal * (CONTEXT_LATENT_FRAMES - 1), len(frames))
        context = geometry.whole_latent_frames(context, self.vae_temporal)
        run["progress"].chunks = math.ceil(total / chunk)
        added = 0
        while added < total:
            new = min(chunk, total - added)
            context_samples = round(context / fps * rate)
            piece = tasks.Request(
                request.task,
                fps,
                request.height,
                request.width,
                context + new,
                round((context + new) / fps * rate),
                rate,
                references=request.references,
                video=frames[-context:],
                audio=None
                if audio is None
                else tasks.fit_length(audio[:, -context_samples:], context_samples),
                context_seconds=(context - 1) / fps,
                trajectory=None,
                camera=None,
                with_audio=request.with_audio,
            )
            chunk_frames, _, chunk_audio, _ = self._generate(piece, **run)
            frames = np.concatenate([frames, chunk_frames[context:]])
            if audio is not None:
                audio = join_audio(audio, chunk_audio, context_samples, rate)
            added += new
        if audio is None:
            return frames, None
        return frames, tasks.fit_length(audio, round(len(frames) / fps * rate))

    # --------------------------------------------------------------------------------------- helpers

    @property
    def audio_channels(self) -> int:
        return self.audio_vae.config.in_channels

    def _check_conditions(self, task, given, audio_sample_rate, video_fps, end, modality) -> None:
        entry = TASKS[task]
        for name, value in given.items():
            if value is not None and name not in entry.takes:
                raise ValueError(
                    f"task {task!r} takes no {name} (tasks that do: {', '.join(tasks_taking(name))})"
                )
        for name in entry.requires:
            if given[name] is None:
                raise ValueError(f"task {task!r} needs {INPUTS[name]}")
        if not self.has_audio:
            if entry.sound:
                raise ValueError(
                    f"task {task!r} needs sound, and this model is video-only ({self._missing_audio()}); "
                    f"video tasks: {', '.join(t for t in OFFERED if not TASKS[t].sound)}"
                )
            if given["audio"] is not None:
                raise ValueError(
                    f"this model is video-only ({self._missing_audio()}): it takes no audio; drop the audio "
                    "(extend and retake then work on the video alone)"
                )
            if entry.parameters == "range" and modality == "audio":
                raise ValueError("this model is video-only: a retake can redo the video, not the audio")
        if given["audio"] is not None and (not isinstance(audio_sample_rate, int) or audio_sample_rate <= 0):
            raise ValueError(f"audio_sample_rate must be a positive integer, got {audio_sample_rate!r}")
        if given["video"] is not None and (video_fps is None or not video_fps > 0):
            raise ValueError(f"video_fps must be positive, got {video_fps!r}")
        if entry.parameters == "range":
            if end is None or not (0 <= given["start"] < end):
                raise ValueError(f"retake needs 0 <= start < end, got start={given['start']!r}, end={end!r}")
            if modality not in ("video", "audio", "both"):
                raise ValueError(f"modality must be 'video', 'audio' or 'both', got {modality!r}")
        if self.vae is None and ({"video", "image"} & set(entry.streams)):
            raise ValueError(f"task {task!r} needs pipeline component 'vae', which this pipeline lacks")

    def _missing_audio(self) -> str:
        """What a pipeline without sound lacks, in words."""
        missing = [name for name in ("audio_vae", "vocoder") if getattr(self, name) is None]
        if not self.transformer.has_audio_expert:
            missing.insert(0, "an audio expert in its transformer")
        return "it has no " + ", no ".join(missing)

    def _resample_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        target = self.mel_config.sample_rate
        if sample_rate == target:
            return audio
        from omni.media import resample

        return resample(audio, sample_rate, target)

    def _request(
        self, task, fps, height, width, seconds, num_frames, given, audio_rate, video_fps, end, modality
    ):
        """Turn checked arguments into a `tasks.Request` in the output's format."""
        entry = TASKS[task]
        with_audio = self.has_audio
        rate = self.sample_rate if with_audio else 0
        video = None
        if given["video"] is not None:
            video = inputs.resample_frames(np.asarray(given["video"]), video_fps, fps, height, width)
        audio = None
        if given["audio"] is not None:
            audio = self._resample_audio(
                inputs.audio_to_array(given["audio"], self.audio_channels), audio_rate
            )
        if entry.length in ("added", "given") and audio is None and with_audio:  # the clip's sound: silence
            audio = np.zeros((self.audio_channels, round(len(video) / fps * rate)), np.float32)
        if entry.length == "added":
            frames, samples = len(video), 0 if audio is None else audio.shape[-1]  # set per chunk
        else:
            frames = self._output_frames(task, seconds, num_frames, fps, video, audio)
            samples = round(frames / fps * rate)
            if entry.suffix == ".wav" and seconds is not None:  # sound alone: exactly the seconds asked
                samples = round(inputs.check_seconds(seconds, fps) * rate)
        key_frames = []
        for name, at in (("image", 0), ("last_image", frames - 1)):
            if given[name] is not None:
                key_frames.append((at, inputs.fit_image(inputs.image_to_array(given[name]), height, width)))
        for at_seconds, image in given["key_frames"] or []:
            index = round(at_seconds * fps)
            if not 0 <= index < frames:
                raise ValueError(
                    f"key frame at {at_seconds:g} s is outside the clip (0 to {(frames - 1) / fps:g} s)"
                )
            key_frames.append((index, inputs.fit_image(inputs.image_to_array(image), height, width)))
        references = [
            inputs.fit_image(inputs.image_to_array(r), height, width, crop=True)
            for r in given["references"] or []
        ]
        camera = given["camera"]
        if isinstance(camera, str):
            camera = CameraPath.preset(camera, frames, width)
        for name, path in (("trajectory", given["trajectory"]), ("camera", camera)):
            length = (
                len(path.points)
                if name == "trajectory" and path is not None
                else len(path.zoom)
                if path is not None
                else frames
            )
            if length != frames:
                raise ValueError(f"the {name} covers {length} frames but the video has {frames}")
        # A retake on a video-only pipeline redoes the video ("both" too; "audio" is refused above).
        retake_modality = modality if with_audio else "video"
        retake = (float(given["start"]), float(end), retake_modality) if entry.parameters == "range" else None
        if retake is not None and retake[1] > (frames + 0.5) / fps:
            raise ValueError(
                f"retake range {retake[0]:g} to {retake[1]:g} s is not inside the given clip (0 to {frames / fps:g} s)"
            )
        return tasks.Request(
            task,
            fps,
            height,
            width,
            frames,
            samples,
            rate,
            key_frames,
            references,
            video,
            audio,
            retake=retake,
            trajectory=given["trajectory"],
            camera=camera,
            with_audio=with_audio,
        )

    def _output_frames(self, task, seconds, num_frames, fps, video_frames, audio_track) -> int:
        """Frames of the output video (its audio spans the same time)."""
        length = TASKS[task].length
        if length == "one":
            return 1
        if length == "given":
            if seconds is not None or num_frames is not None:
                raise ValueError(f"{task} keeps the given clip's length; drop seconds / num_frames")
            return len(video_frames)
        if num_frames is not None:
            if seconds is not None:
                raise ValueError("give seconds or num_frames, not both")
            return geometry.check_num_frames(num_frames, self.vae_temporal)
        if seconds is None:
            if video_frames is not None:
                seconds = len(video_frames) / fps
            elif audio_track is not None:
                seconds = audio_track.shape[-1] / self.mel_config.sample_rate
            else:
                seconds = self.config.default_seconds
        seconds = inputs.check_seconds(seconds, fps)
        frames = round(seconds * fps)
        if video_frames is not None and frames > len(video_frames):
            raise ValueError(
                f"seconds={seconds:g} is longer than the input video ({len(video_frames) / fps:g} s)"
            )
        return frames


TILED_DECODE_PIXELS = 512 * 512  # frames larger than this decode in spatial tiles
CONTEXT_LATENT_FRAMES = 2  # latent frames of the previous clip an extension sees (5 frames at 4x)


def join_audio(audio: np.ndarray, chunk: np.ndarray, context_samples: int, sample_rate: int) -> np.ndarray:
    """Append what `chunk` adds after its first `context_samples` (a copy of `audio`'s tail), crossfading
    from the given audio into the chunk just before the join so the seam is continuous."""
    width = min(context_samples, max(1, round(tasks.CROSSFADE_SECONDS * sample_rate)))
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)
    tail = audio[:, -width:] * (1 - ramp) + chunk[:, context_samples - width : context_samples] * ramp
    return np.concatenate([audio[:, :-width], tail, chunk[:, context_samples:]], axis=1)


def _check_component_weights(folder: Path, index: dict) -> None:
    """Check each model component's safetensors against its config before diffusers loads anything, so a
    truncated or mismatched file is reported by tensor name and shapes."""
    classes = {
        c.__name__: c
        for c in (
            OmniTransformer,
            AutoencoderKLWan,
            AutoencoderKLLTX2Audio,
            LTX2Vocoder,
            PixelVideoCodec,
            MelAudioCodec,
            GriffinLimVocoder,
        )
    }
    for name, spec in index.items():
        if not isinstance(spec, list) or len(spec) != 2 or spec[1] not in classes:
            continue
        config_path = folder / name / "config.json"
        if config_path.is_file():
            check_weights_fit(folder / name, classes[spec[1]], read_json(config_path, f"the {name} config"))


def _add(timings: dict[str, float], key: str, seconds: float) -> None:
    timings[key] = timings.get(key, 0.0) + seconds
