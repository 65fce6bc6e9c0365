"""The on-disk layout of a prepared folder, shared by the writer (`prepare`) and the reader (`LatentShards`).

index.json                  written last: samples, shards, buckets, skipped clips, codecs and clocks
progress.json               the shards finished so far and the settings they were made with (resuming)
empty_text.safetensors      "text" (1, Lt, D) and "text_mask" (1, Lt): the encoded empty prompt
shard_00000.safetensors     sample i of the shard under "{i}.video", "{i}.audio", "{i}.reference",
                            "{i}.text" (bf16 or fp16), "{i}.text_mask" (bool) and "{i}.motion" (fp32)
shard_00000.json            per sample: clip id, caption, source files, bucket, tensor shapes
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

FORMAT = "omni-latent-shards"
VERSION = 2
INDEX_FILE = "index.json"
PROGRESS_FILE = "progress.json"
EMPTY_TEXT_FILE = "empty_text.safetensors"
# Per sample: video (C, f, h, w), audio (C', T, M), reference (C, 1, h, w), text (Lt, D), text_mask (Lt,),
# motion (F, 5): per video frame the subject's centre x, y and the camera's dx, dy, zoom (NaN where unknown).
TENSORS = ("video", "audio", "reference", "text", "text_mask", "motion")
FULL_PRECISION = ("motion",)  # pixel coordinates keep float32
# One key only: safetensors writes its metadata map in no fixed order; prepared files should be reproducible.
SAFETENSORS_METADATA = {"format": f"{FORMAT}/{VERSION}"}
STORAGE_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def shard_file(number: int) -> str:
    return f"shard_{number:05d}.safetensors"


def sidecar_file(number: int) -> str:
    return f"shard_{number:05d}.json"


def tensor_key(sample: int, name: str) -> str:
    """Key of tensor `name` of the shard's `sample`-th sample."""
    return f"{sample}.{name}"


@dataclass(frozen=True)
class ShardLayout:
    """The latent layout of the codecs a folder was prepared with; a model trained on it must match.

    Attributes:
        video_channels: video latent channels (the transformer's in_channels).
        audio_channels: audio latent channels; times `audio_mel_bins` is the transformer's audio_in_channels.
        audio_mel_bins: latent mel bins.
        text_dim: text encoder width (the transformer's text_dim).
        text_tokens: padded text length Lt.
    """

    video_channels: int
    audio_channels: int
    audio_mel_bins: int
    text_dim: int
    text_tokens: int

    def misfits(self, config) -> dict[str, tuple[int, int]]:
        """Transformer config key -> (its value, the value these latents need), for every input width that differs."""
        needed = {
            "in_channels": self.video_channels,
            "audio_in_channels": self.audio_channels * self.audio_mel_bins,
            "text_dim": self.text_dim,
        }
        return {
            key: (getattr(config, key), need) for key, need in needed.items() if getattr(config, key) != need
        }

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def check_format(data: dict[str, Any], path: Path) -> None:
    """Refuse files of another format or version, naming what was found and what is read."""
    found = (data.get("format"), data.get("version"))
    if found != (FORMAT, VERSION):
        raise ValueError(
            f"{path}: written as format {found[0]!r} version {found[1]!r}; this omni reads {FORMAT!r} "
            f"version {VERSION} (prepare the data again with `omni prepare`)"
        )
