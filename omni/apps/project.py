"""Multi-shot projects: a shot list generated with shared subject memory and assembled into one film.

A project file (YAML) lists shots; each shot is one generation (t2av, i2v, a2v, or a continuation of the
previous shot) with optional references, camera, trajectory and audio. Subject memory: a shot without
references of its own is conditioned on a frame of the first earlier shot of the same subject (or of the
first shot, when no subjects are named), so one character keeps its look across rooms.

Every shot's result is cached under a key made of everything that determines it (its fields, the contents
of the files it reads, the references it was given, the model's weights and the defaults), so rerunning
after editing one shot regenerates only that shot and the shots that depend on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from omni.config import ConfigError, from_dict, load_yaml
from omni.media import atomic_output
from omni.media.geometry import parse_size
from omni.tasks import get_task

TRANSITIONS = ("cut", "crossfade", "continue")
MAX_SHOTS = 1000
MAX_SHOT_SECONDS = 60.0
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ShotDefaults:
    fps: float = 16.0
    size: int | str = 64
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    crossfade_seconds: float = 0.25


@dataclass(frozen=True)
class Shot:
    """One shot. Paths are relative to the project file."""

    id: str
    prompt: str
    seconds: float = 2.0
    subject: str | None = None
    references: list[str] = field(default_factory=list)
    image: str | None = None  # approved key frame (i2v)
    audio: str | None = None  # music / speech driving the shot (a2v)
    camera: str | None = None  # preset name or JSON path
    trajectory: str | None = None  # JSON path
    transition: Literal["cut", "crossfade", "continue"] = "cut"  # how this shot follows the previous one
    seed: int | None = None


@dataclass(frozen=True)
class Project:
    shots: list[Shot]
    defaults: ShotDefaults = field(default_factory=ShotDefaults)
    subjects: dict[str, list[str]] = field(default_factory=dict)  # name -> reference image paths
    memory: bool = True  # draw references from earlier shots when a shot has none


def load_project(path: str | Path) -> Project:
    """Parse a project file; errors name the shot (index and id) and the field."""
    path = Path(path)
    data = load_yaml(path)
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        raise ConfigError(f"{path}: 'shots' must be a non-empty list of shots")
    if len(shots) > MAX_SHOTS:
        raise ConfigError(f"{path}: {len(shots)} shots; a project holds at most {MAX_SHOTS}, split it")
    parsed = []
    for index, raw in enumerate(shots):
        name = f"shots[{index}]" + (
            f" (id {raw.get('id')!r})" if isinstance(raw, dict) and "id" in raw else ""
        )
        parsed.append(from_dict(Shot, raw, where=name))
        _check_shot(parsed[-1], name, index)
    duplicates = sorted(i for i, n in Counter(s.id for s in parsed).items() if n > 1)
    if duplicates:
        raise ConfigError(f"{path}: shot ids must be unique, repeated: {duplicates}")
    rest = {k: v for k, v in data.items() if k != "shots"}
    project = from_dict(Project, {**rest, "shots": []}, where=str(path))
    _check_defaults(project.defaults, f"{path}: defaults")
    for index, shot in enumerate(parsed):
        _check_shot_files(shot, f"{path}: shots[{index}] (id {shot.id!r})", path.parent)
    for subject, references in project.subjects.items():
        if not isinstance(references, list):
            raise ConfigError(
                f"{path}: subjects.{subject}: expected a list of image paths, found {references!r}"
            )
        for reference in references:
            if not isinstance(reference, str) or not (path.parent / reference).is_file():
                raise ConfigError(f"{path}: subjects.{subject}: reference {reference!r} is not a file")
    return Project(parsed, project.defaults, project.subjects, project.memory)


def _check_shot_files(shot: Shot, name: str, base: Path) -> None:
    """Every file a shot reads exists, and a camera is a preset or a JSON file, before any shot is made."""
    from omni.conditioning.camera_presets import CAMERA_PRESETS, check_camera

    if shot.camera:
        try:
            check_camera(shot.camera, f"{name}.camera:")
        except ValueError as error:
            raise ConfigError(str(error)) from error
    files = [("image", shot.image), ("audio", shot.audio), ("trajectory", shot.trajectory)]
    files += [("camera", shot.camera)] if shot.camera and shot.camera not in CAMERA_PRESETS else []
    files += [(f"references[{i}]", r) for i, r in enumerate(shot.references)]
    for field_name, relative in files:
        if relative and not (base / relative).is_file():
            raise ConfigError(f"{name}.{field_name}: file not found: {base / relative}")


def _check_defaults(d: ShotDefaults, name: str) -> None:
    """Every number of the defaults, checked before the first shot is generated."""
    if not (math.isfinite(d.fps) and 1 <= d.fps <= 120):
        raise ConfigError(f"{name}.fps: {d.fps} is not in [1, 120]")
    try:
        parse_size(str(d.size))
    except ValueError as error:
        raise ConfigError(f"{name}.size: {error}") from error
    if not 0 <= d.seed <= MAX_SEED:
        raise ConfigError(f"{name}.seed: {d.seed} is not in [0, 2**63 - 1]")
    if d.steps is not None and not 1 <= d.steps <= 1000:
        raise ConfigError(f"{name}.steps: {d.steps} is not in [1, 1000]")
    if d.guidance is not None and not (math.isfinite(d.guidance) and 0 <= d.guidance <= 100):
        raise ConfigError(f"{name}.guidance: {d.guidance} is not in [0, 100]")
    if not (math.isfinite(d.crossfade_seconds) and 0 <= d.crossfade_seconds <= MAX_SHOT_SECONDS):
        raise ConfigError(
            f"{name}.crossfade_seconds: {d.crossfade_seconds} is not in [0, {MAX_SHOT_SECONDS:g}]"
        )


def _check_shot(shot: Shot, name: str, index: int) -> None:
    if not shot.id.strip() or "/" in shot.id:
        raise ConfigError(f"{name}.id: {shot.id!r} must be a non-empty name without '/'")
    if not shot.prompt.strip():
        raise ConfigError(f"{name}.prompt: must not be empty")
    if not 0 < shot.seconds <= MAX_SHOT_SECONDS:
        raise ConfigError(f"{name}.seconds: {shot.seconds} is not in (0, {MAX_SHOT_SECONDS:g}]")
    if shot.seed is not None and not 0 <= shot.seed <= MAX_SEED:
        raise ConfigError(f"{name}.seed: {shot.seed} is not in [0, 2**63 - 1]")
    if shot.transition == "continue" and index == 0:
        raise ConfigError(f"{name}.transition: the first shot cannot continue a previous one")
    if shot.transition == "continue" and (shot.image or shot.audio):
        raise ConfigError(
            f"{name}.transition: a continued shot starts from the previous one; drop image/audio"
        )
    if shot.image and shot.audio:
        raise ConfigError(f"{name}: give an image (i2v) or an audio track (a2v), not both")


@dataclass
class ShotResult:
    frames: np.ndarray  # (F, H, W, 3) uint8
    audio: np.ndarray  # (C, N) float32
    cached: bool


def cached_shots(cache: Path, shot_id: str) -> list[Path]:
    """The cache files of shot `shot_id` (`<id>-<32 hex>.safetensors`), and not those of shot `<id>-b`."""
    name = re.compile(re.escape(shot_id) + r"-[0-9a-f]{32}\.safetensors")
    return [p for p in cache.glob("*.safetensors") if name.fullmatch(p.name)]


def _file_digest(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shot_key(shot: Shot, project: Project, base: Path, model_digest: str, context: list[np.ndarray]) -> str:
    """Cache key: the shot, its files' contents, the references / context it gets, the model and defaults."""
    digest = hashlib.sha256()
    digest.update(json.dumps({f.name: getattr(shot, f.name) for f in fields(Shot)}, sort_keys=True).encode())
    digest.update(
        json.dumps(
            {f.name: getattr(project.defaults, f.name) for f in fields(ShotDefaults)}, sort_keys=True
        ).encode()
    )
    digest.update(model_digest.encode())
    for name in ("image", "audio", "trajectory"):
        if getattr(shot, name):
            digest.update(_file_digest(base / getattr(shot, name)).encode())
    if shot.camera and shot.camera.endswith(".json"):
        digest.update(_file_digest(base / shot.camera).encode())
    for array in context:
        digest.update(hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest().encode())
    return digest.hexdigest()[:32]


class ProjectRunner:
    """Generates a project's shots with one pipeline, caching each shot, and assembles the film."""

    def __init__(
        self, pipeline, project: Project, base: Path, cache: Path, model_digest: str, progress: bool = True
    ):
        self.pipe = pipeline
        self.project = project
        self.base = base
        self.cache = cache
        self.model_digest = model_digest
        self.progress = progress

    def _references(self, shot: Shot, done: dict[str, ShotResult], order: list[Shot]) -> list[np.ndarray]:
        from omni import media

        paths = shot.references or (self.project.subjects.get(shot.subject, []) if shot.subject else [])
        if paths:
            return [media.read_image(self.base / p) for p in paths]
        if not self.project.memory:
            return []
        for earlier in order:
            if earlier.id in done and (shot.subject is None or earlier.subject == shot.subject):
                frames = done[earlier.id].frames
                return [frames[len(frames) // 2]]
        return []

    def run_shot(
        self, shot: Shot, done: dict[str, ShotResult], order: list[Shot], previous: ShotResult | None
    ) -> ShotResult:
        from omni import media
        from omni.conditioning.motion import CAMERA_PRESETS, CameraPath, Trajectory
        from omni.media.arrays import check_audio_range

        d = self.project.defaults
        references = self._references(shot, done, order)
        context = list(references)
        if shot.transition == "continue":
            context += [previous.frames[-5:], previous.audio[:, -16000:]]
        key = shot_key(shot, self.project, self.base, self.model_digest, context)
        cached = self.cache / f"{shot.id}-{key}.safetensors"
        if cached.is_file():
            tensors = load_file(str(cached))
            return ShotResult(tensors["frames"].numpy(), tensors["audio"].numpy(), True)

        height, width = parse_size(str(d.size))
        frames = round(shot.seconds * d.fps)
        kwargs: dict[str, Any] = dict(
            fps=d.fps,
            height=height,
            width=width,
            num_inference_steps=d.steps,
            guidance_scale=d.guidance,
            seed=d.seed if shot.seed is None else shot.seed,
            progress=self.progress,
        )
        task = "t2av"
        if references:
            kwargs["references"] = references
        if shot.image:
            task, kwargs["image"] = "i2v", media.read_image(self.base / shot.image)
        if shot.audio:
            audio, rate = media.read_audio(self.base / shot.audio)
            check_audio_range(audio, f"shot {shot.id!r}: audio {self.base / shot.audio}")
            task, kwargs["audio"], kwargs["audio_sample_rate"] = "a2v", audio, rate
        if shot.transition == "continue":
            task = "extend"
            kwargs.update(
                video=previous.frames,
                video_fps=d.fps,
                audio=previous.audio,
                audio_sample_rate=self.pipe.sample_rate,
            )
        kwargs["seconds"] = shot.seconds  # of the shot, also when it continues the previous one
        takes = get_task(task).takes
        if shot.camera and "camera" in takes:
            kwargs["camera"] = (
                shot.camera
                if shot.camera in CAMERA_PRESETS
                else CameraPath.from_json(self.base / shot.camera, frames, d.fps)
            )
        if shot.trajectory and "trajectory" in takes:
            kwargs["trajectory"] = Trajectory.from_json(self.base / shot.trajectory, frames, d.fps)
        result = self.pipe(shot.prompt, task=task, **kwargs)
        frames_out, audio_out = result.frames[0], result.audio[0]
        if get_task(task).length == "added":  # keep only what this shot added to the given clip
            start = len(previous.frames)
            frames_out = frames_out[start:]
            audio_out = audio_out[:, round(start / d.fps * self.pipe.sample_rate) :]
        self.cache.mkdir(parents=True, exist_ok=True)
        for stale in cached_shots(self.cache, shot.id):
            stale.unlink()
        with atomic_output(cached) as tmp:
            save_file(
                {
                    "frames": torch.from_numpy(np.ascontiguousarray(frames_out)),
                    "audio": torch.from_numpy(np.ascontiguousarray(audio_out)),
                },
                str(tmp),
            )
        return ShotResult(frames_out, audio_out, False)

    def run(self) -> tuple[np.ndarray, np.ndarray, list[tuple[Shot, ShotResult]]]:
        done: dict[str, ShotResult] = {}
        results: list[tuple[Shot, ShotResult]] = []
        previous = None
        for shot in self.project.shots:
            result = self.run_shot(shot, done, self.project.shots, previous)
            done[shot.id] = result
            results.append((shot, result))
            previous = (
                result
                if shot.transition != "continue"
                else ShotResult(
                    np.concatenate([previous.frames, result.frames]),
                    np.concatenate([previous.audio, result.audio], 1),
                    result.cached,
                )
            )
        frames, audio = assemble_film(results, self.project.defaults, self.pipe.sample_rate)
        return frames, audio, results


def assemble_film(
    results: list[tuple[Shot, ShotResult]], defaults: ShotDefaults, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Join shots into one clip. Cuts and continuations join end to end (audio with a 10 ms crossfade so no
    click); crossfades blend the overlap of both pictures and sounds. Audio stays one continuous track."""
    from omni.pipelines.tasks import CROSSFADE_SECONDS

    frames, audio = results[0][1].frames, results[0][1].audio
    fps = defaults.fps
    for shot, result in results[1:]:
        overlap = round(defaults.crossfade_seconds * fps) if shot.transition == "crossfade" else 0
        overlap = min(overlap, len(frames) - 1, len(result.frames) - 1)
        if overlap > 0:
            ramp = np.linspace(0, 1, overlap + 2, dtype=np.float32)[1:-1, None, None, None]
            blend = frames[-overlap:] * (1 - ramp) + result.frames[:overlap] * ramp
            frames = np.concatenate(
                [frames[:-overlap], np.round(blend).astype(np.uint8), result.frames[overlap:]]
            )
            samples = round(overlap / fps * sample_rate)
        else:
            frames = np.concatenate([frames, result.frames])
            samples = max(1, round(CROSSFADE_SECONDS * sample_rate))
        samples = min(samples, audio.shape[1], result.audio.shape[1])
        ramp = np.linspace(0, 1, samples, dtype=np.float32)
        if overlap > 0:
            mixed = audio[:, -samples:] * (1 - ramp) + result.audio[:, :samples] * ramp
            audio = np.concatenate([audio[:, :-samples], mixed, result.audio[:, samples:]], axis=1)
        else:  # fade the last few ms out and the next shot in, end to end: no click, no gap
            audio = audio.copy()
            audio[:, -samples:] *= 1 - ramp
            head = result.audio.copy()
            head[:, :samples] *= ramp
            audio = np.concatenate([audio, head], axis=1)
    samples = round(len(frames) / fps * sample_rate)
    audio = (
        audio[:, :samples]
        if audio.shape[1] >= samples
        else np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))
    )
    return frames, audio
