"""Pre-encoding clips into latent shards (`omni prepare`), so training never runs a VAE or a text encoder.

Each clip of a source is conformed to one format (`omni.data.clips`), encoded with a pipeline's codecs (video
VAE, audio VAE on log-mel, text encoder) and appended to a shard; every `shard_size` samples the shard is
written atomically and recorded in `progress.json`. A rerun with the same settings passes over the clips of
recorded shards without decoding them, so a killed run continues where it stopped and ends with the same
files an uninterrupted run writes. Clips that cannot be used are skipped, logged and listed in the index.
The layout of the folder is described in `omni.data.shard_format`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from omni.conditioning.text import clean_prompt, encode_text
from omni.config import read_json
from omni.data.clips import SKIP_REASONS, ClipFormat, ClipRejected, ConformedClip, SourceClip, conform
from omni.data.shard_format import (
    EMPTY_TEXT_FILE,
    FORMAT,
    FULL_PRECISION,
    INDEX_FILE,
    PROGRESS_FILE,
    SAFETENSORS_METADATA,
    STORAGE_DTYPES,
    VERSION,
    ShardLayout,
    check_format,
    shard_file,
    sidecar_file,
    tensor_key,
)
from omni.data.sources import ClipSource
from omni.media import atomic_output
from omni.media.atomic import write_json
from omni.media.geometry import nearest_valid_frames


@dataclass(frozen=True)
class PrepareConfig:
    """How clips are prepared.

    Attributes:
        format: what every clip is conformed to (fps, size, duration buckets, audio rate and channels).
        max_text_tokens: text states are padded / truncated to this many tokens (Lt).
        shard_size: samples per shard file.
        storage_dtype: "bfloat16" or "float16" for the latents and text states (masks stay bool).
    """

    format: ClipFormat
    max_text_tokens: int
    shard_size: int = 256
    storage_dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        for name in ("max_text_tokens", "shard_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.storage_dtype not in STORAGE_DTYPES:
            raise ValueError(
                f"storage_dtype must be one of {sorted(STORAGE_DTYPES)}, got {self.storage_dtype!r}"
            )


def default_format(
    pipe,
    fps: float | None = None,
    height: int | None = None,
    width: int | None = None,
    frames: tuple[int, ...] | None = None,
) -> ClipFormat:
    """The pipeline's clip format: its default fps, size and duration unless given, its audio VAE's audio."""
    cfg = pipe.config
    fps = float(cfg.default_fps if fps is None else fps)
    if frames is None:
        frames = (nearest_valid_frames(round(cfg.default_seconds * fps), pipe.vae_temporal),)
    return ClipFormat(
        fps=fps,
        height=cfg.default_height if height is None else height,
        width=cfg.default_width if width is None else width,
        frames=tuple(frames),
        sample_rate=pipe.mel_config.sample_rate,
        audio_channels=pipe.audio_channels,
        temporal=pipe.vae_temporal,
        pixel_multiple=pipe.pixels_per_token,
    )


@dataclass(frozen=True)
class EncodedSample:
    """One prepared sample: its tensors (CPU, float32; masks bool) and its sidecar record.

    tensors: video (C, f, h, w), audio (C', T, M), reference (C, 1, h, w), text (Lt, D), text_mask (Lt,).
    """

    tensors: dict[str, Tensor]
    record: dict[str, Any]


class SampleEncoder:
    """Encodes conformed clips with a pipeline's video VAE, audio VAE and text encoder."""

    def __init__(self, pipe, max_text_tokens: int):
        missing = [
            name for name in ("vae", "audio_vae", "text_encoder", "tokenizer") if getattr(pipe, name) is None
        ]
        if missing:
            raise ValueError(f"preparing data needs the pipeline components {missing}, which it lacks")
        self.pipe = pipe
        pipe.pin_execution_device(pipe.device)  # nothing is offloaded here: skip the per-call hook search
        self.max_text_tokens = max_text_tokens
        audio_vae = pipe.audio_vae
        self.layout = ShardLayout(
            video_channels=pipe.vae.config.z_dim,
            audio_channels=audio_vae.config.latent_channels,
            audio_mel_bins=audio_vae.config.mel_bins // audio_vae.mel_compression_ratio,
            text_dim=pipe.text_encoder.config.hidden_size,
            text_tokens=max_text_tokens,
        )

    def text(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Captions -> states (B, Lt, D) float32 and mask (B, Lt) bool, on the CPU, cleaned as the pipeline
        cleans prompts (a converted Wan: as diffusers' Wan pipelines do), so training sees what sampling will."""
        cleaned = [clean_prompt(c, self.pipe.config.prompt_cleaning) for c in captions]
        states, mask = encode_text(self.pipe.text_encoder, self.pipe.tokenizer, cleaned, self.max_text_tokens)
        return states.float().cpu(), mask.cpu()

    def encode(
        self, conformed: ConformedClip, clip: SourceClip, text: tuple[Tensor, Tensor] | None = None
    ) -> EncodedSample:
        """One clip's sample; `text` (states (1, Lt, D), mask (1, Lt)) when its caption is already encoded."""
        pipe = self.pipe
        text, text_mask = self.text([clip.caption]) if text is None else text
        tensors = {
            "video": pipe.encode_video(conformed.frames)[0].cpu(),
            "audio": pipe.encode_audio(conformed.audio)[0].cpu(),
            "reference": pipe.encode_video(conformed.reference_frame[None])[0].cpu(),
            "text": text[0],
            "text_mask": text_mask[0],
            "motion": torch.from_numpy(conformed.motion),
        }
        record = {
            "clip": clip.clip_id,
            "caption": clip.caption,
            "source": clip.origin,
            "audio_source": "silence" if conformed.silent else clip.audio_origin,
            "audio_padding_samples": conformed.audio_padding,
            "source_fps": clip.fps,
            "source_frames": len(clip.frames),
            "source_size": list(clip.frames.shape[1:3]),
            "frames": len(conformed.frames),
            "shapes": {name: list(tensor.shape) for name, tensor in tensors.items()},
        }
        return EncodedSample(tensors, record)


@dataclass(frozen=True)
class ShardRecord:
    """A finished shard as `progress.json` lists it.

    Attributes:
        file, sidecar: its safetensors and JSON file names.
        samples: samples it holds.
        consumed: clips of the source looked at up to and including this shard (where a rerun resumes).
        skipped: clips skipped since the previous shard: {"clip", "source", "reason", "message"}.
        buckets: frame count -> {"samples": n, "shapes": per-tensor shape}.
        silent: samples whose clip had no audio (encoded as silence).
    """

    file: str
    sidecar: str
    samples: int
    consumed: int
    skipped: list[dict[str, str]]
    buckets: dict[str, dict[str, Any]]
    silent: int


@dataclass(frozen=True)
class PrepareSummary:
    """What a run did. `clips` and `seconds` count this run only; the rest describes the whole folder."""

    clips: int
    samples: int
    shards: int
    reused_shards: int
    skipped: dict[str, int]
    silent: int
    seconds: float

    def line(self) -> str:
        rate = self.clips / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"prepared {self.samples} samples in {self.shards} shards ({self.reused_shards} reused); "
            f"{self.clips} clips read in {self.seconds:.1f} s ({rate:.2f} clips/s)"
        )
        skipped = sum(self.skipped.values())
        if skipped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.skipped.items())
            text += f"; skipped {skipped} ({reasons})"
        if self.silent:
            text += f"; {self.silent} without audio (encoded as silence)"
        return text


def prepare(
    source: ClipSource,
    pipe,
    out: str | os.PathLike[str],
    config: PrepareConfig,
    *,
    codecs: str | os.PathLike[str] | None,
    progress: bool = True,
    on_shard: Callable[[ShardRecord], None] | None = None,
) -> PrepareSummary:
    """Encode every usable clip of `source` into shards under `out`, resuming a run stopped earlier.

    Args:
        source: the clips, in a fixed order.
        pipe: the `OmniPipeline` whose codecs encode them (on the device it should run on).
        out: the output folder: new, empty, or holding an unfinished or finished run with the same settings.
        config: format, text length, shard size and storage dtype.
        codecs: the pipeline folder the codecs come from, recorded in the index (the trainer decodes with it).
        progress: show a progress bar.
        on_shard: called after each shard is recorded as finished.

    Raises:
        ValueError: `out` holds other files, or a run with different settings.
    """
    start = time.perf_counter()
    out = Path(out)
    encoder = SampleEncoder(pipe, config.max_text_tokens)
    settings = _settings(source, config, encoder, codecs)
    shards = _resume(out, settings)
    reused = len(shards)
    resume_at = shards[-1].consumed if shards else 0

    pending: list[EncodedSample] = []
    skipped: list[dict[str, str]] = []
    clips = 0
    bar = tqdm(total=source.count, initial=resume_at, disable=not progress, unit="clip", desc="prepare")
    for position, item in enumerate(source):
        if position < resume_at:
            continue
        clips += 1
        try:
            clip = item.load()
            pending.append(encoder.encode(conform(clip, config.format), clip))
        except ClipRejected as rejected:
            skipped.append(
                {
                    "clip": item.clip_id,
                    "source": item.origin,
                    "reason": rejected.reason,
                    "message": str(rejected),
                }
            )
            tqdm.write(f"prepare: skipped {item.clip_id} ({rejected.reason}): {rejected}", file=sys.stderr)
        bar.update(1)
        if len(pending) == config.shard_size:
            shards.append(_finish_shard(out, shards, pending, skipped, position + 1, settings, config))
            pending, skipped = [], []
            if on_shard is not None:
                on_shard(shards[-1])
    bar.close()
    if pending:
        shards.append(_finish_shard(out, shards, pending, skipped, resume_at + clips, settings, config))
        skipped = []
        if on_shard is not None:
            on_shard(shards[-1])

    _write_empty_text(out, encoder, config)
    index = build_index(shards, skipped, settings, config, pipe)
    write_json(out / INDEX_FILE, index)
    return PrepareSummary(
        clips=clips,
        samples=index["samples"],
        shards=len(shards),
        reused_shards=reused,
        skipped=index["skipped_by_reason"],
        silent=index["silent_clips"],
        seconds=time.perf_counter() - start,
    )


def _settings(source: ClipSource, config: PrepareConfig, encoder: SampleEncoder, codecs) -> dict[str, Any]:
    """Everything the shards depend on; a resumed run must match it exactly (as JSON)."""
    fmt = config.format
    settings = {
        "source": source.identity,
        "codecs": None if codecs is None else str(Path(codecs).resolve()),
        "text_encoder": encoder.pipe.config.text_encoder_source,
        "layout": encoder.layout.to_dict(),
        "format": asdict(fmt),
        "max_text_tokens": config.max_text_tokens,
        "shard_size": config.shard_size,
        "storage_dtype": config.storage_dtype,
    }
    return json.loads(json.dumps(settings))


def _resume(out: Path, settings: dict[str, Any]) -> list[ShardRecord]:
    """The finished shards of an earlier run into `out` (recorded, files present), checking its settings."""
    progress_path = out / PROGRESS_FILE
    if not progress_path.is_file():
        if out.exists() and any(out.iterdir()):
            raise ValueError(
                f"{out} is not empty and holds no `omni prepare` run; choose a new or empty folder"
            )
        out.mkdir(parents=True, exist_ok=True)
        write_json(progress_path, {"format": FORMAT, "version": VERSION, "settings": settings, "shards": []})
        return []
    progress = read_json(progress_path, "the progress file of `omni prepare`")
    check_format(progress, progress_path)
    if progress.get("settings") != settings:
        before = progress.get("settings") or {}
        changed = sorted(key for key in set(before) | set(settings) if before.get(key) != settings.get(key))
        raise ValueError(
            f"{out} was prepared with different settings ({', '.join(changed)} changed); "
            "rerun with the original ones to resume, or choose a new output folder"
        )
    (out / INDEX_FILE).unlink(missing_ok=True)  # written again when this run ends
    shards = []
    for record in progress["shards"]:
        if not ((out / record["file"]).is_file() and (out / record["sidecar"]).is_file()):
            break
        shards.append(ShardRecord(**record))
    if len(shards) < len(progress["shards"]):
        _write_progress(out, settings, shards)
    return shards


def _write_progress(out: Path, settings: dict[str, Any], shards: list[ShardRecord]) -> None:
    data = {"format": FORMAT, "version": VERSION, "settings": settings, "shards": [asdict(s) for s in shards]}
    write_json(out / PROGRESS_FILE, data)


def _finish_shard(
    out: Path,
    shards: list[ShardRecord],
    samples: list[EncodedSample],
    skipped: list[dict[str, str]],
    consumed: int,
    settings: dict[str, Any],
    config: PrepareConfig,
) -> ShardRecord:
    """Write shard number len(shards) and its sidecar, then record it in the progress file (commit point)."""
    number = len(shards)
    dtype = STORAGE_DTYPES[config.storage_dtype]
    tensors = {}
    for i, sample in enumerate(samples):
        for name, tensor in sample.tensors.items():
            stored = tensor if tensor.dtype == torch.bool or name in FULL_PRECISION else tensor.to(dtype)
            tensors[tensor_key(i, name)] = stored.contiguous()
    with atomic_output(out / shard_file(number)) as tmp:
        save_file(tensors, str(tmp), metadata=SAFETENSORS_METADATA)
    sidecar = {
        "format": FORMAT,
        "version": VERSION,
        "shard": shard_file(number),
        "storage_dtype": config.storage_dtype,
        "samples": [sample.record for sample in samples],
    }
    write_json(out / sidecar_file(number), sidecar)

    buckets: dict[str, dict[str, Any]] = {}
    for sample in samples:
        bucket = buckets.setdefault(
            str(sample.record["frames"]), {"samples": 0, "shapes": sample.record["shapes"]}
        )
        bucket["samples"] += 1
    record = ShardRecord(
        file=shard_file(number),
        sidecar=sidecar_file(number),
        samples=len(samples),
        consumed=consumed,
        skipped=list(skipped),
        buckets=buckets,
        silent=sum(sample.record["audio_source"] == "silence" for sample in samples),
    )
    _write_progress(out, settings, [*shards, record])
    return record


def _write_empty_text(out: Path, encoder: SampleEncoder, config: PrepareConfig) -> None:
    """The encoded empty prompt: what the trainer puts in place of a dropped caption."""
    states, mask = encoder.text([""])
    tensors = {
        "text": states.to(STORAGE_DTYPES[config.storage_dtype]).contiguous(),
        "text_mask": mask.contiguous(),
    }
    with atomic_output(out / EMPTY_TEXT_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=SAFETENSORS_METADATA)


def build_index(
    shards: list[ShardRecord],
    tail_skipped: list[dict[str, str]],
    settings: dict[str, Any],
    config: PrepareConfig,
    pipe,
) -> dict[str, Any]:
    """The folder's index: what the trainer and a reader need, and an account of every clip."""
    fmt = config.format
    skipped = [entry for shard in shards for entry in shard.skipped] + list(tail_skipped)
    by_reason = Counter(entry["reason"] for entry in skipped)
    buckets: dict[str, dict[str, Any]] = {}
    for shard in shards:
        for frames, bucket in shard.buckets.items():
            merged = buckets.setdefault(frames, {"samples": 0, "shapes": bucket["shapes"]})
            merged["samples"] += bucket["samples"]
    samples = sum(shard.samples for shard in shards)
    return {
        "format": FORMAT,
        "version": VERSION,
        "samples": samples,
        "clips": samples + len(skipped),
        "shards": [{"file": s.file, "sidecar": s.sidecar, "samples": s.samples} for s in shards],
        "buckets": dict(sorted(buckets.items(), key=lambda item: int(item[0]))),
        "skipped_by_reason": {reason: by_reason[reason] for reason in SKIP_REASONS if by_reason[reason]},
        "skipped": skipped,
        "silent_clips": sum(shard.silent for shard in shards),
        "codecs": settings["codecs"],
        "text_encoder": settings["text_encoder"],
        "max_text_tokens": config.max_text_tokens,
        "layout": settings["layout"],
        "fps": fmt.fps,
        "height": fmt.height,
        "width": fmt.width,
        "frames": list(fmt.frames),
        "sample_rate": fmt.sample_rate,
        "audio_channels": fmt.audio_channels,
        "video_frame_seconds": fmt.temporal / fmt.fps,
        "audio_frame_seconds": pipe.audio_frame_seconds,
        "storage_dtype": config.storage_dtype,
        "empty_text": EMPTY_TEXT_FILE,
        "source": settings["source"],
    }
