"""mp4 writing and video reading: round trips, audio-video sync in ffmpeg and PyAV, bad input, atomicity."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from omni.media import MediaError, read_audio, read_video, write_mp4
from omni.media import mp4 as mp4_module

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SYNC_TOLERANCE_SECONDS = 0.005


def beep_clip(fps: int, sample_rate: int, channels: int, beep_at: float = 1.0, seconds: float = 2.0):
    """Black frames with one white frame at `beep_at`, and silence with an 80 ms 1 kHz beep starting there."""
    frames = np.zeros((round(seconds * fps), 32, 48, 3), np.uint8)
    frames[round(beep_at * fps)] = 255
    audio = np.zeros((channels, round(seconds * sample_rate)), np.float32)
    start, stop = round(beep_at * sample_rate), round((beep_at + 0.08) * sample_rate)
    audio[:, start:stop] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(stop - start) / sample_rate)
    return frames, audio


def onset_seconds(audio: np.ndarray, sample_rate: int) -> float:
    """Time of the first sample louder than a quarter of the peak (the beep's onset)."""
    envelope = np.abs(audio).max(axis=0)
    return int(np.argmax(envelope > 0.25 * envelope.max())) / sample_rate


def ffmpeg_audio(path: Path, channels: int) -> np.ndarray:
    """(C, N) float32 audio as the ffmpeg command line decodes it."""
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.float32).reshape(-1, channels).T


def ffmpeg_video(path: Path, height: int, width: int) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB as the ffmpeg command line decodes it."""
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def ffmpeg_flash_seconds(path: Path) -> float:
    """Presentation time ffmpeg gives the first bright frame (showinfo's mean luma)."""
    log = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    for time, luma in re.findall(r"pts_time:(\S+).*?mean:\[(\d+)", log):
        if int(luma) > 128:
            return float(time)
    raise AssertionError("ffmpeg saw no bright frame")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def smooth_frames(count: int, height: int, width: int) -> np.ndarray:
    """Moving colour gradients: the content a well-configured H.264 encoder keeps above 30 dB."""
    t = np.arange(count)[:, None, None]
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    red = 0.5 + 0.4 * np.sin(2 * np.pi * (x + t / count))
    green = 0.5 + 0.4 * np.cos(2 * np.pi * (y - t / count))
    blue = np.broadcast_to(0.3 + 0.4 * x * y, red.shape)
    return np.round(np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)


@pytest.mark.parametrize(("fps", "sample_rate", "channels"), [(16, 16000, 1), (24, 48000, 2), (25, 44100, 1)])
def test_beep_written_at_one_second_decodes_at_one_second_in_ffmpeg_and_pyav(
    tmp_path, fps, sample_rate, channels
):
    frames, audio = beep_clip(fps, sample_rate, channels)
    path = write_mp4(tmp_path / "sync.mp4", frames, fps, audio, sample_rate)

    heard_by_ffmpeg = onset_seconds(ffmpeg_audio(path, channels), sample_rate)
    clip = read_video(path)
    heard_by_pyav = onset_seconds(clip.audio, sample_rate)
    assert abs(heard_by_ffmpeg - 1.0) <= SYNC_TOLERANCE_SECONDS, heard_by_ffmpeg
    assert abs(heard_by_pyav - 1.0) <= SYNC_TOLERANCE_SECONDS, heard_by_pyav
    # The flash is seen at the same time as the beep is heard.
    assert ffmpeg_flash_seconds(path) == pytest.approx(1.0, abs=1e-3)
    assert int(np.argmax(clip.frames.mean(axis=(1, 2, 3)) > 128)) / clip.fps == 1.0


def test_round_trip_keeps_frames_fps_size_and_exact_audio_length(tmp_path):
    frames = smooth_frames(20, 48, 80)
    sample_rate, samples = 16000, 16000 + 777  # not a multiple of the 1024-sample AAC frame
    t = np.arange(samples) / sample_rate
    tones = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)])
    audio = tones.astype(np.float32)
    path = write_mp4(tmp_path / "clip.mp4", frames, 16, audio, sample_rate)

    clip = read_video(path)
    assert clip.frames.shape == frames.shape and clip.frames.dtype == np.uint8
    assert clip.fps == 16.0 and clip.sample_rate == sample_rate
    assert clip.audio.shape == (2, samples) and clip.audio.dtype == np.float32
    assert ffmpeg_audio(path, 2).shape == (2, samples)
    assert psnr(clip.frames, frames) > 30
    for written, read in zip(audio, clip.audio):
        assert np.corrcoef(written, read)[0, 1] > 0.99


def test_colours_read_back_as_ffmpeg_shows_them(tmp_path):
    # Frames are written tagged BT.709; a reader assuming another matrix would shift saturated colours.
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    frames[:, :, :8] = (220, 30, 40)
    frames[:, :, 8:] = (20, 200, 60)
    path = write_mp4(tmp_path / "colours.mp4", frames, 8)
    ours = read_video(path).frames.astype(int)
    assert np.abs(ours - ffmpeg_video(path, 16, 16)).max() <= 1
    assert np.abs(ours[:, 4:12, 2:6] - frames[:, 4:12, 2:6]).max() <= 4


def test_video_only_and_audio_only_files(tmp_path):
    frames = smooth_frames(5, 16, 16)
    video_only = read_video(write_mp4(tmp_path / "silent.mp4", frames, 10))
    assert not video_only.has_audio and video_only.audio is None and video_only.sample_rate is None
    assert video_only.num_frames == 5 and video_only.duration_seconds == 0.5

    audio = np.sin(np.linspace(0, 200, 5000, dtype=np.float32))
    path = write_mp4(tmp_path / "sound.m4a", audio=audio, sample_rate=22050)
    audio_only = read_video(path)
    assert not audio_only.has_video and audio_only.frames is None and audio_only.num_frames == 0
    assert audio_only.audio.shape == (1, 5000) and ffmpeg_audio(path, 1).shape == (1, 5000)
    assert audio_only.duration_seconds == pytest.approx(5000 / 22050)


def test_audio_shorter_than_one_aac_frame_keeps_its_length(tmp_path):
    audio = np.full((1, 100), 0.25, np.float32)
    path = write_mp4(tmp_path / "blip.mp4", audio=audio, sample_rate=16000)
    assert read_video(path).audio.shape == (1, 100)
    assert ffmpeg_audio(path, 1).shape == (1, 100)


def test_float_and_torch_inputs_match_uint8(tmp_path):
    frames = smooth_frames(4, 16, 32)
    audio = np.sin(np.linspace(0, 300, 8000)).astype(np.float32) * 0.5
    from_uint8 = read_video(write_mp4(tmp_path / "a.mp4", frames, 8, audio, 16000))
    as_float = torch.from_numpy(frames).float() / 255
    from_torch = read_video(write_mp4(tmp_path / "b.mp4", as_float, 8, torch.from_numpy(audio), 16000))
    np.testing.assert_array_equal(from_torch.frames, from_uint8.frames)
    np.testing.assert_allclose(from_torch.audio, from_uint8.audio, atol=1e-6)


def test_max_frames_reads_the_first_frames_and_their_audio(tmp_path):
    frames, audio = beep_clip(16, 16000, 1)
    path = write_mp4(tmp_path / "long.mp4", frames, 16, audio, 16000)
    clip = read_video(path, max_frames=8)
    assert clip.num_frames == 8 and clip.audio.shape == (1, 8000)
    np.testing.assert_array_equal(clip.frames, read_video(path).frames[:8])


def mux_with_audio_delay(tmp_path: Path, delay_seconds: float) -> Path:
    """The beep clip remuxed by ffmpeg with its audio starting `delay_seconds` after the video."""
    frames, audio = beep_clip(16, 16000, 1)
    video = write_mp4(tmp_path / "v.mp4", frames, 16)
    sound = write_mp4(tmp_path / "a.m4a", audio=audio, sample_rate=16000)
    muxed = tmp_path / "late.mp4"
    subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(video), "-itsoffset", str(delay_seconds), "-i", str(sound)]
        + ["-map", "0:v", "-map", "1:a", "-c", "copy", str(muxed)],
        check=True,
    )
    return muxed


def test_audio_starting_late_is_padded_to_the_video_clock(tmp_path):
    clip = read_video(mux_with_audio_delay(tmp_path, 0.25))
    assert abs(onset_seconds(clip.audio, 16000) - 1.25) <= SYNC_TOLERANCE_SECONDS


def test_max_frames_before_late_audio_starts_gives_silence(tmp_path):
    clip = read_video(mux_with_audio_delay(tmp_path, 1.5), max_frames=4)
    assert clip.num_frames == 4 and clip.audio.shape == (1, 4000)
    assert not clip.audio.any()


def test_audio_track_without_a_known_codec_raises_media_error(tmp_path):
    frames, audio = beep_clip(16, 16000, 1)
    data = write_mp4(tmp_path / "good.mp4", frames, 16, audio, 16000).read_bytes()
    audio_minf = data.index(b"minf", data.index(b"soun"))  # the audio track's media information box
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:audio_minf] + b"linf" + data[audio_minf + 4 :])
    for read in (read_video, read_audio):
        with pytest.raises(MediaError, match="damaged.mp4"):
            read(damaged)


def test_damaged_files_give_a_clip_or_media_error_never_another_exception(tmp_path):
    frames, audio = beep_clip(16, 16000, 2)
    good = write_mp4(tmp_path / "good.mp4", frames, 16, audio, 16000).read_bytes()
    rng = np.random.default_rng(7)
    damaged = tmp_path / "damaged.mp4"
    for _ in range(60):
        data = bytearray(good)
        start = int(rng.integers(0, len(data)))
        data[start : start + int(rng.integers(1, 64))] = rng.bytes(int(rng.integers(1, 64)))
        damaged.write_bytes(bytes(data))
        try:
            clip = read_video(damaged)
        except MediaError:
            continue
        assert clip.has_video or clip.has_audio


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": np.zeros((2, 15, 16, 3), np.uint8), "fps": 8}, r"16x15 .*even"),
        ({"frames": np.zeros((2, 16, 16, 3), np.int64), "fps": 8}, "dtype int64"),
        ({"frames": np.zeros((2, 3, 16, 16), np.uint8), "fps": 8}, "channels first"),
        ({"frames": np.zeros((0, 16, 16, 3), np.uint8), "fps": 8}, "empty"),
        ({"frames": np.zeros((2, 16, 16, 3), np.uint8), "fps": 0}, "fps must be"),
        ({"frames": np.zeros((2, 16, 16, 3), np.uint8), "fps": float("nan")}, "fps must be"),
        ({"frames": np.zeros((2, 16, 16, 3), np.uint8)}, "fps must be"),
        ({"audio": np.array([0.0, np.nan], np.float32), "sample_rate": 16000}, "not finite"),
        ({"audio": np.full(10, 1.5, np.float32), "sample_rate": 16000}, r"outside \[-1, 1\]"),
        ({"audio": np.zeros(10, np.int16), "sample_rate": 16000}, "dtype int16"),
        ({"audio": np.zeros((1000, 2), np.float32), "sample_rate": 16000}, "transpose"),
        ({"audio": np.zeros(0, np.float32), "sample_rate": 16000}, "empty"),
        ({"audio": np.zeros(10, np.float32), "sample_rate": 44000}, "44000 is not an AAC rate"),
        ({"audio": np.zeros(10, np.float32)}, "None is not an AAC rate"),
        ({"audio": np.zeros(10, np.float32), "sample_rate": 16000, "fps": 16}, "fps=16 given without frames"),
        ({}, "nothing to write"),
    ],
)
def test_bad_input_is_refused_by_name_and_writes_nothing(tmp_path, kwargs, message):
    path = tmp_path / "bad.mp4"
    with pytest.raises(MediaError, match=message) as error:
        write_mp4(path, **kwargs)
    assert str(path) in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_writing_another_container_suffix_is_refused(tmp_path):
    with pytest.raises(MediaError, match=r"\.mkv"):
        write_mp4(tmp_path / "clip.mkv", np.zeros((1, 16, 16, 3), np.uint8), 8)


def test_nan_frame_midway_leaves_existing_file_intact_and_no_temp_files(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous take")
    frames = np.full((12, 16, 16, 3), 0.5, np.float32)
    frames[9, 3, 4, 1] = np.nan  # found only when frame 9 is encoded, after the file was opened
    with pytest.raises(MediaError, match="frame 9"):
        write_mp4(path, frames, 8)
    assert path.read_bytes() == b"previous take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_exception_during_encoding_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []
    real_audio_frame = mp4_module._audio_frame

    def failing_audio_frame(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_audio_frame(*args)

    monkeypatch.setattr(mp4_module, "_audio_frame", failing_audio_frame)
    frames, audio = beep_clip(16, 16000, 1)
    with pytest.raises(KeyboardInterrupt):
        write_mp4(tmp_path / "out.mp4", frames, 16, audio, 16000)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_truncated_and_non_media_files_raise_media_error_naming_the_file(tmp_path):
    frames, audio = beep_clip(16, 16000, 1)
    good = write_mp4(tmp_path / "good.mp4", frames, 16, audio, 16000)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).bytes(50_000))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    for path in (truncated, noise, text, tmp_path):
        with pytest.raises(MediaError, match=re.escape(str(path))):
            read_video(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")


def test_sample_frames_picks_evenly_spread_frames_and_names_a_broken_file(tmp_path):
    from omni.media.video import sample_frames

    frames = np.zeros((20, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(20) * 12)[:, None, None]  # red level tells the frame apart
    write_mp4(tmp_path / "ramp.mp4", frames, 16.0)
    picked = sample_frames(tmp_path / "ramp.mp4", 3)
    red = [int(round(f[..., 0].mean() / 12)) for f in picked]
    assert red == [0, 10, 19]  # first, middle, last
    assert len(sample_frames(tmp_path / "ramp.mp4", 50)) == 20  # never more than there are
    (tmp_path / "broken.mp4").write_bytes((tmp_path / "ramp.mp4").read_bytes()[:600])
    with pytest.raises(MediaError, match="broken.mp4"):
        sample_frames(tmp_path / "broken.mp4", 3)
