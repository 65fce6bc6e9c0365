"""Video reading through PyAV: frames as RGB uint8, the first audio track aligned to the video clock."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from omni.media.clip import Clip
from omni.media.errors import MediaError
from omni.media.reading import DecodedAudio, check_readable, decode_audio_frames, open_container

# With max_frames, audio is demuxed this far past the last kept frame: far beyond any interleaving gap.
AUDIO_READ_AHEAD_SECONDS = 1.0


def read_video(path: str | os.PathLike[str], *, max_frames: int | None = None) -> Clip:
    """Decode the first video stream (RGB uint8) and first audio stream ((C, N) float32) of a media file.

    Audio is aligned to the video: sample 0 plays at the time of frame 0 (leading audio is dropped,
    late-starting audio is padded with silence). It ends where the container says (mp4 sample
    durations and edit lists are honoured, so an mp4 from `write_mp4` gives back exactly N
    samples). `max_frames` stops after that many frames and cuts the audio to their duration.
    Lossy decoders can overshoot full scale slightly; audio is clipped to [-1, 1] as a conversion
    to PCM would.

    Raises:
        FileNotFoundError: `path` does not exist.
        MediaError: not a media file, corrupt or truncated, or with neither video nor audio.
    """
    path = check_readable(path)
    if max_frames is not None and max_frames < 1:
        raise MediaError(f"{path}: max_frames must be >= 1 or None, got {max_frames}")
    with open_container(path) as container:
        video_stream = container.streams.video[0] if container.streams.video else None
        audio_stream = container.streams.audio[0] if container.streams.audio else None
        if video_stream is None and audio_stream is None:
            raise MediaError(f"{path}: has no video or audio stream")
        try:
            frames, frame_times, sound, video_cut = _decode(container, video_stream, audio_stream, max_frames)
        except av.FFmpegError as error:
            raise MediaError(f"{path}: corrupt or truncated media: {error}") from error
        fps = None if video_stream is None else _frame_rate(video_stream, path)
    if video_stream is not None and not frames:
        raise MediaError(f"{path}: the video stream holds no decodable frames")
    if audio_stream is not None and sound is None:
        raise MediaError(f"{path}: the audio stream holds no decodable audio")
    if sound is not None and video_stream is not None:
        sound = sound.aligned_to(frame_times[0], len(frames) / fps if video_cut else None)
    return Clip(
        frames=np.stack(frames) if video_stream is not None else None,
        fps=fps,
        audio=None if sound is None else sound.samples,
        sample_rate=None if sound is None else sound.sample_rate,
    )


def spread_indices(count: int, wanted: int) -> np.ndarray:
    """`wanted` indices spread evenly over `count` items (all of them when there are fewer)."""
    if count <= wanted:
        return np.arange(count)
    return np.linspace(0, count - 1, wanted).round().astype(int)


def sample_frames(path: str | os.PathLike[str], count: int) -> list[np.ndarray]:
    """`count` RGB frames (H, W, 3) uint8 spread evenly over the video stream of `path` (all of them when it
    has fewer; none when it has no video stream). Only those frames are converted, so a long high-resolution
    clip costs little memory; a stream that does not state its length is counted by demuxing first."""
    path = check_readable(path)
    with open_container(path) as container:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        try:
            total = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        except av.FFmpegError as error:
            raise MediaError(f"{path}: corrupt or truncated media: {error}") from error
    wanted = set(spread_indices(total, count).tolist())
    frames: list[np.ndarray] = []
    with open_container(path) as container:
        try:
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                if index in wanted:
                    frames.append(_frame_rgb(frame))
                if len(frames) == len(wanted):
                    break
        except av.FFmpegError as error:
            raise MediaError(f"{path}: corrupt or truncated media: {error}") from error
    return frames


def _decode(
    container: av.container.InputContainer,
    video_stream: av.VideoStream | None,
    audio_stream: av.AudioStream | None,
    max_frames: int | None,
) -> tuple[list[np.ndarray], list[float], DecodedAudio | None, bool]:
    """One pass over the packets: RGB frames, their times, the audio track, and whether max_frames cut video."""
    frames: list[np.ndarray] = []
    frame_times: list[float] = []
    audio_packets: list[av.Packet] = []
    video_cut = False
    audio_past_cut = 0
    for packet in container.demux([s for s in (video_stream, audio_stream) if s is not None]):
        video_done = max_frames is not None and len(frames) >= max_frames
        if packet.stream.type == "audio":
            audio_packets.append(packet)
            if video_done and _seconds(packet) > frame_times[-1] + AUDIO_READ_AHEAD_SECONDS:
                audio_past_cut += 1
                if audio_past_cut == 2:  # not 1: a track's first packet can be all priming
                    break
        elif video_done:
            # The flush packet (size 0) may still release frames the decoder held back.
            video_cut = video_cut or packet.size > 0 or bool(packet.decode())
            if audio_stream is None:
                break
        else:
            for frame in packet.decode():
                if max_frames is not None and len(frames) >= max_frames:
                    video_cut = True
                    break
                frames.append(_frame_rgb(frame))
                frame_times.append(frame.time or 0.0)
    sound = None if audio_stream is None else decode_audio_frames(audio_stream, audio_packets)
    return frames, frame_times, sound, video_cut


def _seconds(packet: av.Packet) -> float:
    """Presentation time of `packet`; -inf when it has none (so it never ends a read early)."""
    return float(packet.pts * packet.time_base) if packet.pts is not None else float("-inf")


def _frame_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB; PyAV converts with the frame's own matrix and range (BT.601 limited if untagged)."""
    return frame.to_ndarray(format="rgb24")


def _frame_rate(stream: av.VideoStream, path: Path) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise MediaError(f"{path}: the video stream has no frame rate")
    return float(rate)
