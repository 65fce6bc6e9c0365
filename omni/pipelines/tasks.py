"""From a checked request to the latent streams to denoise, and from denoised latents back to media.

Every task is a `Request` whose given parts (key frames, a video, an audio track, references, a time range to
keep) become clean latent frames of `StreamPlan`s (of batch 1), by the task's entry in `omni.tasks` (its
streams and their clean rules, the same rules training draws from); `assemble` puts the decoded streams and
the untouched inputs together, so media the user handed over is returned exactly as it came (no re-encoding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from omni.conditioning.masks import TaskParameters, clean_frames
from omni.conditioning.motion import CameraPath, Trajectory, control_maps
from omni.conditioning.plan import REFERENCE_SECONDS, StreamPlan
from omni.media.geometry import latent_frames
from omni.tasks import CONDITION_OF_STREAM, TASKS

CROSSFADE_SECONDS = 0.01  # audio joins between given and generated audio


@dataclass
class Request:
    """A checked generation in the output's format (fps, size, sample rate).

    frames / num_samples: length of the video / audio to denoise together (one chunk).
    key_frames: (output frame index, (H, W, 3) uint8) images the video must show.
    video: given frames (F, H, W, 3) uint8 from time 0 of the chunk (v2a, extend's context, retake's clip).
    audio: given audio (C, N) float32 from time 0 (a2v, extend's context, retake's clip).
    """

    task: str
    fps: float
    height: int
    width: int
    frames: int
    num_samples: int
    sample_rate: int
    key_frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    references: list[np.ndarray] = field(default_factory=list)
    video: np.ndarray | None = None
    audio: np.ndarray | None = None
    context_seconds: float | None = None  # extend: time of the last clean latent frame of the context
    retake: tuple[float, float, str] | None = None  # (start, end, "video" | "audio" | "both")
    trajectory: Trajectory | None = None
    camera: CameraPath | None = None
    with_audio: bool = True  # False on a video-only pipeline: i2v, extend and retake run on the video alone

    @property
    def has_video(self) -> bool:
        return TASKS[self.task].has_video

    @property
    def has_audio(self) -> bool:
        return self.with_audio and TASKS[self.task].has_audio

    @property
    def parameters(self) -> TaskParameters:
        """What the task's clean rules read besides lengths: the context's time, or the retake's range."""
        if self.retake is not None:
            start, end, redo = self.retake
            return TaskParameters(start=start, end=end, redo=redo)
        return TaskParameters(context_seconds=self.context_seconds)

    def clean_rule(self, stream: str) -> str:
        return TASKS[self.task].streams[stream]


def pad_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """First `count` frames, repeating the last one when the clip is shorter."""
    if len(frames) >= count:
        return frames[:count]
    return np.concatenate([frames, np.repeat(frames[-1:], count - len(frames), axis=0)])


def video_plan(pipe, request: Request) -> StreamPlan:
    temporal = pipe.vae_temporal
    spatial = pipe.vae.config.scale_factor_spatial
    count = latent_frames(request.frames, temporal)
    shape = (pipe.transformer.config.in_channels, count, request.height // spatial, request.width // spatial)
    clean = torch.zeros(shape)
    mask = torch.zeros(count, dtype=torch.bool)
    if request.video is not None:  # v2a, extend's context, retake's clip
        clean = pipe.encode_video(pad_frames(request.video, 1 + temporal * (count - 1)))[0].cpu()
        rule = request.clean_rule("video")
        mask = clean_frames(rule, "video", count, temporal / request.fps, request.parameters)
    for frame, image in request.key_frames:
        index, latent = key_frame_latent(pipe, frame, image)
        clean[:, index], mask[index] = latent, True
    control = None
    if request.trajectory is not None or request.camera is not None:
        control = control_maps(
            shape[1:], (request.height, request.width), request.camera, request.trajectory, temporal
        )
    return StreamPlan(
        "video",
        shape,
        frame_seconds=temporal / request.fps,
        clean=clean[None] if mask.any() else None,
        clean_mask=mask[None] if mask.any() else None,
        condition=CONDITION_OF_STREAM["video"] if mask.any() else None,
        control=control[None] if control is not None else None,
    )


def key_frame_latent(pipe, frame: int, image: np.ndarray) -> tuple[int, torch.Tensor]:
    """(latent index, (C, h, w) latent) showing `image` at output frame `frame`.

    Frame 0 is the clip's first latent frame, an image latent of the causal VAE. A later latent frame i
    summarises frames 4i - 3 .. 4i, so the image is encoded as a still: the latent of five copies of it.
    """
    temporal = pipe.vae_temporal
    if frame == 0:
        return 0, pipe.encode_video(image[None])[0, :, 0].cpu()
    index = math.ceil(frame / temporal)
    still = pipe.encode_video(np.repeat(image[None], 1 + temporal, axis=0))[0, :, 1].cpu()
    return index, still


def audio_plan(pipe, request: Request) -> StreamPlan:
    count = pipe.audio_latent_frames(request.num_samples)
    mel_bins = pipe.audio_vae.config.mel_bins // pipe.audio_vae.mel_compression_ratio
    shape = (pipe.transformer.config.audio_in_channels // mel_bins, count, mel_bins)
    step = pipe.audio_frame_seconds
    if request.audio is None:
        return StreamPlan("audio", shape, frame_seconds=step)
    given = pipe.encode_audio(request.audio)[0].cpu()
    clean = torch.zeros(shape)
    length = min(count, given.shape[1])
    clean[:, :length] = given[:, :length]
    rule = request.clean_rule("audio")
    mask = clean_frames(rule, "audio", count, step, request.parameters)
    if rule != "outside_range" or request.parameters.redo == "video":
        mask &= torch.arange(count) < length  # only the given track is clean (a redone range: the rule alone)
    return StreamPlan(
        "audio",
        shape,
        frame_seconds=step,
        clean=clean[None],
        clean_mask=mask[None],
        condition=CONDITION_OF_STREAM["audio"],
    )


def reference_plans(pipe, request: Request) -> list[StreamPlan]:
    plans = []
    for image in request.references:
        latent = pipe.encode_video(image[None]).cpu()  # (1, C, 1, h, w)
        plans.append(
            StreamPlan(
                "image",
                tuple(latent.shape[1:]),
                start_seconds=REFERENCE_SECONDS,
                clean=latent,
                clean_mask=torch.ones(1, 1, dtype=torch.bool),
                condition=CONDITION_OF_STREAM["reference"],
                output=False,
            )
        )
    return plans


def plan(pipe, request: Request) -> list[StreamPlan]:
    """The streams of `request`: the outputs first, then reference images."""
    if "image" in TASKS[request.task].streams:
        spatial = pipe.vae.config.scale_factor_spatial
        shape = (pipe.transformer.config.in_channels, 1, request.height // spatial, request.width // spatial)
        return [StreamPlan("image", shape), *reference_plans(pipe, request)]
    plans = []
    if request.has_video:
        plans.append(video_plan(pipe, request))
    if request.has_audio:
        plans.append(audio_plan(pipe, request))
    return plans + reference_plans(pipe, request)


def crossfade(given: np.ndarray, generated: np.ndarray, keep: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio that is `given` where `keep` (N,) and `generated` elsewhere, with short linear crossfades at the
    joins so no click is heard."""
    weight = keep.astype(np.float32)
    width = max(1, round(CROSSFADE_SECONDS * sample_rate))
    kernel = np.ones(width, np.float32) / width
    weight = np.convolve(
        np.pad(weight, (width // 2, width - 1 - width // 2), mode="edge"), kernel, mode="valid"
    )
    return given * weight + generated * (1 - weight)


def assemble(request: Request, frames: np.ndarray | None, audio: np.ndarray | None):
    """Decoded (F, H, W, 3) frames and (C, N) audio of the chunk -> the output, with given media kept exactly
    where it was given (v2a and a2v inputs, retake outside its range; extend is assembled by the caller)."""
    streams = TASKS[request.task].streams
    if streams.get("video") == "all":
        frames = request.video[: request.frames]
    if streams.get("audio") == "all":
        audio = fit_length(request.audio, request.num_samples)
    if request.retake is not None:
        start, end, modality = request.retake
        if modality in ("video", "both"):
            times = np.arange(request.frames) / request.fps
            inside = (times >= start) & (times <= end)
            frames = np.where(
                inside[:, None, None, None], frames[: request.frames], request.video[: request.frames]
            )
        else:
            frames = request.video[: request.frames]
        if request.audio is None:  # a video-only pipeline
            return frames, None
        given = fit_length(request.audio, request.num_samples)
        if modality in ("audio", "both"):
            times = np.arange(request.num_samples) / request.sample_rate
            audio = crossfade(given, audio, ~((times >= start) & (times <= end)), request.sample_rate)
        else:
            audio = given
    return frames, audio


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """(C, N) audio cut or padded with silence to `samples`."""
    if audio.shape[-1] >= samples:
        return audio[:, :samples]
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[-1])))
