"""Audio files: wav writing with soundfile, reading of any audio through soundfile or PyAV."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile

from omni.media.arrays import audio_to_float32, to_numpy
from omni.media.atomic import atomic_output
from omni.media.errors import MediaError, MediaWarning
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
    with (
        atomic_output(path) as tmp,
        soundfile.SoundFile(tmp, "w", int(sample_rate), len(audio), subtype="FLOAT", format="WAV") as f,
    ):
        # libsndfile's PEAK chunk holds the time of writing: without it the same audio gives the same bytes.
        soundfile._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
        f.write(audio.T)
    return path


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # sndfile.h; soundfile has no wrapper for it


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
    missing = _wav_bytes_missing(path)
    if missing:
        warnings.warn(
            f"{path}: truncated: its data chunk lacks {missing:,} bytes; read {audio.shape[1] / rate:.2f} s",
            MediaWarning,
            stacklevel=2,
        )
    if audio.shape[1] == 0:
        raise MediaError(f"{path}: the audio track is empty")
    if mono:
        audio = audio.mean(axis=0, keepdims=True)
    if sample_rate is not None:
        audio, rate = resample(audio, rate, int(sample_rate)), int(sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def _wav_bytes_missing(path: Path) -> int:
    """Bytes a RIFF/WAVE file's data chunk declares but the file does not hold (0 for other files)."""
    with path.open("rb") as f:
        if f.read(4) != b"RIFF" or f.seek(8) != 8 or f.read(4) != b"WAVE":
            return 0
        size = path.stat().st_size
        while True:
            header = f.read(8)
            if len(header) < 8:
                return 0
            chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"data":
                # 0 and 0xFFFFFFFF mark a stream whose length was never filled in: not a truncation.
                return 0 if length in (0, 0xFFFFFFFF) else max(0, f.tell() + length - size)
            f.seek(length + (length & 1), os.SEEK_CUR)


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
