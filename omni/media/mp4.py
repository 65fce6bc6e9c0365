"""mp4 writing (H.264 + AAC through PyAV) with sample-exact audio-video sync.

AAC priming: the encoder emits about 1024 samples of priming before the first real sample. PyAV's
AAC encoder gives them negative timestamps (the first packet has pts -1024) when the input frames
carry pts starting at 0; the mp4 muxer then writes an edit list whose media time skips the
priming, and the last packet's duration marks the padding of the final 1024-sample frame. ffmpeg
and PyAV (tested) honour the edit list, so audio sample 0 plays with video frame 0; ffmpeg and
`read_video` also stop after exactly N samples (PyAV's bare decoder returns the last frame whole).
Frames without pts would put the priming on the timeline and shift all audio 1024 samples late
(64 ms at 16 kHz), so pts are always set.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from omni.media.arrays import audio_to_float32, check_pixels, pixels_to_uint8, to_numpy
from omni.media.atomic import atomic_output
from omni.media.errors import MediaError

MP4_SUFFIXES = (".mp4", ".m4v", ".m4a", ".mov")
AAC_FRAME_SAMPLES = 1024
AAC_SAMPLE_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
AUDIO_LAYOUTS = {1: "mono", 2: "stereo"}
MAX_FPS_DENOMINATOR = 1001  # keeps NTSC rates exact: 30000 / 1001, 24000 / 1001
# faststart puts the index first so players can start before the download ends.
MOV_OPTIONS = {"movflags": "+faststart"}


def write_mp4(
    path: str | os.PathLike[str],
    frames: Any = None,
    fps: float | None = None,
    audio: Any = None,
    sample_rate: int | None = None,
    *,
    crf: int = 18,
    audio_bitrate: int = 128_000,
) -> Path:
    """Write video and/or audio to an mp4 (H.264 yuv420p BT.709 + AAC-LC), atomically; return the path.

    Args:
        frames: (F, H, W, 3) RGB, uint8 or float in [0, 1], numpy or torch; H and W even (yuv420p).
        fps: frames per second (> 0), exactly when `frames` is given.
        audio: (N,) or (C, N) float in [-1, 1], C in 1..2, numpy or torch.
        sample_rate: an AAC sample rate (see AAC_SAMPLE_RATES), exactly when `audio` is given.
        crf: x264 constant rate factor, 0 (lossless) .. 51; 18 is visually lossless.
        audio_bitrate: AAC bits per second.

    Audio sample 0 plays at the time of frame 0, and ffmpeg and `read_video` read back exactly N
    samples (see the module docstring).
    Float frames are checked and converted one at a time, so a NaN in frame 10 fails the write
    midway; nothing is left at `path` then.
    """
    path = Path(path)
    if path.suffix.lower() not in MP4_SUFFIXES:
        raise MediaError(f"{path}: write_mp4 writes mp4 files; use one of the suffixes {MP4_SUFFIXES}")
    video = None if frames is None else _video_input(frames, fps, path)
    sound = None if audio is None else _audio_input(audio, sample_rate, path)
    if video is None and sound is None:
        raise MediaError(
            f"{path}: nothing to write; give frames (with fps), audio (with sample_rate) or both"
        )
    if video is None and fps is not None:
        raise MediaError(f"{path}: fps={fps} given without frames")
    if sound is None and sample_rate is not None:
        raise MediaError(f"{path}: sample_rate={sample_rate} given without audio")
    if not 0 <= crf <= 51:
        raise MediaError(f"{path}: crf must be in 0..51, got {crf}")
    if audio_bitrate <= 0:
        raise MediaError(f"{path}: audio_bitrate must be > 0 bits per second, got {audio_bitrate}")
    try:
        with atomic_output(path) as tmp, av.open(str(tmp), "w", format="mp4", options=MOV_OPTIONS) as out:
            _encode(out, video, sound, crf, audio_bitrate, path)
    except av.FFmpegError as error:
        raise MediaError(f"{path}: encoding failed: {error}") from error
    return path


def _video_input(frames: Any, fps: float | None, path: Path) -> tuple[np.ndarray, Fraction]:
    """Checked (F, H, W, 3) frames (still uint8 or float) and the frame rate as a fraction."""
    frames = to_numpy(frames, f"{path}: frames")
    check_pixels(frames, f"{path}: frames", ndim=4)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise MediaError(
            f"{path}: frame size {width}x{height} (W x H) is odd; H.264 yuv420p needs even width and height"
        )
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise MediaError(f"{path}: fps must be a finite number > 0 when frames are given, got {fps}")
    return frames, Fraction(fps).limit_denominator(MAX_FPS_DENOMINATOR)


def _audio_input(audio: Any, sample_rate: int | None, path: Path) -> tuple[np.ndarray, int]:
    """Checked (C, N) float32 audio and its sample rate."""
    audio = audio_to_float32(to_numpy(audio, f"{path}: audio"), f"{path}: audio")
    if sample_rate not in AAC_SAMPLE_RATES:
        raise MediaError(
            f"{path}: sample_rate {sample_rate} is not an AAC rate; use one of {AAC_SAMPLE_RATES}"
        )
    return audio, int(sample_rate)


def _encode(
    out: av.container.OutputContainer,
    video: tuple[np.ndarray, Fraction] | None,
    sound: tuple[np.ndarray, int] | None,
    crf: int,
    audio_bitrate: int,
    path: Path,
) -> None:
    """Encode both streams lazily and mux their packets in time order, so the muxer buffers little."""
    packets = []
    if video is not None:
        frames, rate = video
        stream = _add_video_stream(out, rate, frames.shape[2], frames.shape[1], crf)
        packets.append(_video_packets(stream, frames, rate, path))
    if sound is not None:
        audio, sample_rate = sound
        stream = _add_audio_stream(out, sample_rate, audio.shape[0], audio_bitrate)
        packets.append(_audio_packets(stream, audio, sample_rate))
    out.start_encoding()  # opens the codecs and writes the header with their final parameters
    for packet in heapq.merge(*packets, key=lambda packet: packet.dts * packet.time_base):
        out.mux(packet)


def _video_packets(
    stream: av.VideoStream, frames: np.ndarray, rate: Fraction, path: Path
) -> Iterator[av.Packet]:
    """H.264 packets of `frames`, encoded as they are asked for; None at the end flushes the encoder."""
    for frame in itertools.chain((_video_frame(frames, i, rate, path) for i in range(len(frames))), [None]):
        yield from stream.encode(frame)


def _audio_packets(stream: av.AudioStream, audio: np.ndarray, sample_rate: int) -> Iterator[av.Packet]:
    """AAC packets of `audio`, encoded as they are asked for; the first is checked to time the priming."""
    starts = range(0, audio.shape[1], AAC_FRAME_SAMPLES)
    inputs = itertools.chain((_audio_frame(audio, start, sample_rate) for start in starts), [None])
    packets = itertools.chain.from_iterable(stream.encode(frame) for frame in inputs)
    first = next(packets)
    _check_priming_is_timed(first.pts)
    yield first
    yield from packets


def _add_video_stream(
    out: av.container.OutputContainer, rate: Fraction, width: int, height: int, crf: int
) -> av.VideoStream:
    """An H.264 yuv420p stream tagged BT.709 limited range, the matrix `_video_frame` converts with."""
    stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf)})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    context = stream.codec_context
    context.time_base = 1 / rate
    context.colorspace = Colorspace.ITU709  # same number as AVCOL_SPC_BT709
    context.color_primaries = ColorPrimaries.BT709
    context.color_trc = ColorTrc.BT709
    context.color_range = ColorRange.MPEG
    return stream


def _add_audio_stream(
    out: av.container.OutputContainer, sample_rate: int, channels: int, bitrate: int
) -> av.AudioStream:
    stream = out.add_stream("aac", rate=sample_rate)
    stream.layout = AUDIO_LAYOUTS[channels]
    stream.bit_rate = bitrate
    stream.codec_context.time_base = Fraction(1, sample_rate)
    return stream


def _video_frame(frames: np.ndarray, index: int, rate: Fraction, path: Path) -> av.VideoFrame:
    """Frame `index` as a BT.709 limited-range yuv420p frame with pts `index` (time base 1 / fps)."""
    rgb = pixels_to_uint8(frames[index], f"{path}: frame {index}")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame = frame.reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    frame.pts, frame.time_base = index, 1 / rate
    return frame


def _audio_frame(audio: np.ndarray, start: int, sample_rate: int) -> av.AudioFrame:
    """One AAC frame's worth of samples from `start`, with pts `start` (time base 1 / sample_rate)."""
    chunk = np.ascontiguousarray(audio[:, start : start + AAC_FRAME_SAMPLES])
    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=AUDIO_LAYOUTS[audio.shape[0]])
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
    return frame


def _check_priming_is_timed(first_pts: int | None) -> None:
    """The edit list that hides AAC priming exists only if the encoder gave the priming negative pts."""
    if first_pts is None or first_pts >= 0:
        raise RuntimeError(
            f"the AAC encoder's first packet has pts {first_pts}, expected a negative pts covering its "
            "priming; without it audio would play late. Has the PyAV/FFmpeg AAC encoder changed?"
        )
