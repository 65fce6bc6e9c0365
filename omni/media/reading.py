"""Shared pieces of reading media through PyAV: opening safely and decoding an audio track exactly."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from omni.media.errors import MediaError


def check_readable(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path; FileNotFoundError if it does not exist, MediaError if it is not a file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such media file", str(path))
    if not path.is_file():
        raise MediaError(f"{path}: is not a file")
    return path


@contextmanager
def open_container(path: Path) -> Iterator[av.container.InputContainer]:
    """Open `path` for demuxing; anything FFmpeg cannot recognise raises MediaError naming the file."""
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise MediaError(f"{path}: not a readable media file: {error}") from error
    with container:
        yield container


@dataclass(frozen=True)
class DecodedAudio:
    """An audio track: (C, N) float32 samples and the time of sample 0 in seconds."""

    samples: np.ndarray
    sample_rate: int
    start_seconds: float

    def aligned_to(self, start_seconds: float, duration_seconds: float | None = None) -> DecodedAudio:
        """The track re-based so sample 0 plays at `start_seconds`, optionally cut to `duration_seconds`.

        Audio that starts later is padded with silence; audio that starts earlier loses its lead.
        """
        shift = round((self.start_seconds - start_seconds) * self.sample_rate)
        samples = self.samples
        if shift > 0:
            samples = np.pad(samples, ((0, 0), (shift, 0)))
        elif shift < 0:
            samples = samples[:, -shift:]
        if duration_seconds is not None:
            samples = samples[:, : round(duration_seconds * self.sample_rate)]
        return DecodedAudio(np.ascontiguousarray(samples), self.sample_rate, start_seconds)


def decode_audio_frames(stream: av.AudioStream, packets: Iterable[av.Packet]) -> DecodedAudio | None:
    """Decode `packets` of `stream` (as `demux` yields them, flush packet last) into planar float32.

    The decoder honours the edit list's leading skip (AAC priming) but returns whole codec frames
    at the end; ffmpeg drops the padding past the last packet's duration, and so does this.
    None when no audio could be decoded.
    """
    to_planar = av.AudioResampler(format="fltp")  # layout and rate: those of the decoded frames
    chunks: list[np.ndarray] = []
    first: av.AudioFrame | None = None
    end: float | None = None
    for packet in packets:
        if packet.pts is not None and packet.duration:
            packet_end = float((packet.pts + packet.duration) * packet.time_base)
            end = packet_end if end is None else max(end, packet_end)
        for frame in packet.decode():
            if first is None:
                first = frame
            chunks.extend(planar.to_ndarray() for planar in to_planar.resample(frame))
    if first is None:
        return None
    chunks.extend(planar.to_ndarray() for planar in to_planar.resample(None))
    samples = np.concatenate(chunks, axis=1)
    start = first.time or 0.0
    if end is not None:
        samples = samples[:, : max(0, round((end - start) * first.sample_rate))]
    return DecodedAudio(np.clip(samples, -1.0, 1.0), first.sample_rate, start)
