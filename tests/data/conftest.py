"""Tiny codecs, tiny mp4s and a manifest over them, shared by the data tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from omni.data.clips import ClipFormat
from omni.data.manifest import ManifestEntry, write_manifest
from omni.data.prepare import PrepareConfig, default_format
from omni.media import write_mp4, write_wav

# Prepared at 8 fps, 32x32, in buckets of 9 or 17 frames: small enough to encode in a blink on a CPU.
FPS, SIZE, FRAMES = 8.0, 32, (9, 17)


@dataclass(frozen=True)
class ClipFiles:
    """The manifest of the session's clips and what each line is expected to become."""

    manifest: Path
    folder: Path
    usable: tuple[str, ...]  # file names of the clips that must be prepared, in manifest order
    skipped: dict[str, str]  # file name -> skip reason


@pytest.fixture(scope="session")
def codecs(tiny_pipeline, tmp_path_factory) -> Path:
    """The tiny random pipeline saved as a folder, as `omni prepare --model` takes it."""
    folder = tmp_path_factory.mktemp("codecs")
    tiny_pipeline.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def clip_format(tiny_pipeline) -> ClipFormat:
    return default_format(tiny_pipeline, fps=FPS, height=SIZE, width=SIZE, frames=FRAMES)


@pytest.fixture(scope="session")
def prepare_config(clip_format, tiny_pipeline) -> PrepareConfig:
    return PrepareConfig(clip_format, tiny_pipeline.config.max_text_tokens, shard_size=2)


def noise_frames(rng: np.random.Generator, count: int, height: int, width: int) -> np.ndarray:
    """Smooth random frames (H.264 keeps them close), different in every frame."""
    coarse = rng.integers(0, 256, (count, height // 8, width // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(coarse.repeat(8, axis=1).repeat(8, axis=2))


def tone(seconds: float, sample_rate: int, channels: int, hz: float) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return np.repeat(0.3 * np.sin(2 * np.pi * hz * t)[None], channels, axis=0).astype(np.float32)


@pytest.fixture(scope="session")
def clip_files(tmp_path_factory) -> ClipFiles:
    """Seven manifest lines: four usable clips (two buckets, three kinds of audio) and three to skip."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    # Already in the target format: prepared unchanged except for the cut to 17 frames.
    write_mp4(folder / "exact.mp4", noise_frames(rng, 20, SIZE, SIZE), FPS, tone(2.5, 16000, 1, 440), 16000)
    # 16 fps, 64x48, stereo 22.05 kHz: retimed, cropped and resampled into the 9-frame bucket.
    write_mp4(folder / "wide.mp4", noise_frames(rng, 24, 48, 64), 16.0, tone(1.5, 22050, 2, 660), 22050)
    write_mp4(folder / "silent.mp4", noise_frames(rng, 18, SIZE, SIZE), FPS)  # no audio track at all
    write_mp4(folder / "dubbed.mp4", noise_frames(rng, 12, SIZE, SIZE), FPS)
    write_wav(folder / "dubbed.wav", tone(0.5, 16000, 1, 880), 16000)  # shorter than the video
    write_mp4(folder / "short.mp4", noise_frames(rng, 6, SIZE, SIZE), FPS)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    entries = [
        ManifestEntry(folder / "exact.mp4", "a red ball bouncing left and right"),
        ManifestEntry(folder / "corrupt.mp4", "a broken file"),
        ManifestEntry(folder / "wide.mp4", "a blue square moving up and down"),
        ManifestEntry(folder / "missing.mp4", "a file that is not there"),
        ManifestEntry(folder / "silent.mp4", "a green triangle in a quiet room"),
        ManifestEntry(folder / "short.mp4", "too short to use"),
        ManifestEntry(folder / "dubbed.mp4", "a yellow circle that beeps once", folder / "dubbed.wav"),
    ]
    manifest = write_manifest(folder / "clips.jsonl", entries)
    return ClipFiles(
        manifest,
        folder,
        usable=("exact.mp4", "wide.mp4", "silent.mp4", "dubbed.mp4"),
        skipped={"corrupt.mp4": "unreadable", "missing.mp4": "missing_file", "short.mp4": "too_short"},
    )
