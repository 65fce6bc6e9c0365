"""Audio files: wav writing with soundfile, reading of any audio through soundfile or PyAV."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile

from omni.media.arrays import audio_to_float32, to_numpy
from omni.media.atomic import atomic_output
from omni.media.errors import MediaError
from omni.media.reading import check_readable, decode_audio_frames, open_container
from omni.media.resampling import resample


def write_wav(path: str | os.PathLike[str], audio: Any, sample_rate: int) -> Path:
    """Write (N,) or (C, N) float audio in [-1, 1] (numpy or torch) as a 32-bit float wav, atomically.

    32-bit float keeps every sample exactly as given (model outputs and metrics read back
    bit-identical, no 16-bit quantisation noise); every current player and library reads it.
    """
    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise MediaError(f"{path}: write_wav writes .wav files, got suffix {path.suffix!r}")
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise MediaError(f"{path}: sample_rate must be a positive integer, got {sample_rate!r}")
    audio = audio_to_float32(to_numpy(audio, f"{path}: audio"), f"{path}: audio")
    with atomic_output(path) as tmp:
        soundfile.write(tmp, audio.T, int(sample_rate), subtype="FLOAT", format="WAV")
    return path


def read_audio(
    path: str | os.PathLike[str], *, sample_rate: int | None = None, mono: bool = False
) -> tuple[np.ndarray, int]:
    """Read an audio file (wav, flac, ogg, mp3, or the first audio track of mp4, m4a, mkv, webm...).

    Returns (C, N) float32 and its sample rate: `sample_rate` when given (band-limited resampling,
    see `resample`), else the file's. `mono=True` averages the channels into one. Lossless
    files come back as stored; lossy decodes are clipped to [-1, 1].

    Raises:
        FileNotFoundError: `path` does not exist.
        MediaError: not an audio file, corrupt, or without an audio track.
    """
    path = check_readable(path)
    if sample_rate is not None and (not isinstance(sample_rate, int | np.integer) or sample_rate <= 0):
        raise MediaError(f"{path}: sample_rate must be a positive integer or None, got {sample_rate!r}")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        audio = samples.T
    except soundfile.SoundFileError:  # not a format libsndfile knows: try FFmpeg
        audio, rate = _read_with_pyav(path)
    if audio.shape[1] == 0:
        raise MediaError(f"{path}: the audio track is empty")
    if mono:
        audio = audio.mean(axis=0, keepdims=True)
    if sample_rate is not None:
        audio, rate = resample(audio, rate, int(sample_rate)), int(sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def _read_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    """The first audio track of any container FFmpeg can demux, as (C, N) float32."""
    with open_container(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio track")
        stream = container.streams.audio[0]
        try:
            decoded = decode_audio_frames(stream, container.demux(stream))
        except av.FFmpegError as error:
            raise MediaError(f"{path}: corrupt or truncated audio: {error}") from error
    if decoded is None:
        raise MediaError(f"{path}: the audio track holds no decodable audio")
    return decoded.samples, decoded.sample_rate
