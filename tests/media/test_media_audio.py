"""wav writing, reading any audio, resampling and downmixing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile
import torch

from omni.media import MediaError, read_audio, resample, write_mp4, write_wav


def tone(frequency: float, sample_rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.argmax(spectrum) * sample_rate / audio.size)


def test_wav_round_trip_is_bit_exact(tmp_path):
    audio = np.stack([tone(440, 16000), tone(550, 16000, amplitude=0.9)])
    path = write_wav(tmp_path / "out.wav", audio, 16000)
    read, rate = read_audio(path)
    assert rate == 16000 and read.dtype == np.float32
    np.testing.assert_array_equal(read, audio)
    assert soundfile.info(str(path)).subtype == "FLOAT"


def test_wav_from_torch_mono_vector(tmp_path):
    audio = torch.from_numpy(tone(300, 8000, seconds=0.1))
    read, _ = read_audio(write_wav(tmp_path / "mono.wav", audio, 8000))
    assert read.shape == (1, 800)
    np.testing.assert_array_equal(read[0], audio.numpy())


def test_read_pcm16_wav_scales_to_unit_range(tmp_path):
    path = tmp_path / "pcm.wav"
    soundfile.write(str(path), np.array([0, 16384, -32768], np.int16), 8000, subtype="PCM_16")
    read, _ = read_audio(path)
    np.testing.assert_array_equal(read, [[0.0, 0.5, -1.0]])


def test_resampling_48k_to_16k_keeps_pitch_level_and_duration(tmp_path):
    path = write_wav(tmp_path / "a440.wav", tone(440, 48000), 48000)
    read, rate = read_audio(path, sample_rate=16000)
    assert rate == 16000 and read.shape == (1, 16000)
    assert peak_frequency(read[0], 16000) == pytest.approx(440, abs=1)
    np.testing.assert_allclose(read[0, 200:-200], tone(440, 16000)[200:-200], atol=1e-4)


def test_resampling_removes_content_above_the_new_nyquist_rate_instead_of_aliasing_it():
    # 12 kHz cannot exist at 16 kHz; a naive decimation folds it onto 4 kHz at full level.
    resampled = resample(tone(12000, 48000), 48000, 16000)
    assert np.sqrt(np.mean(resampled**2)) < 1e-3


@pytest.mark.parametrize(("orig_rate", "new_rate"), [(16000, 48000), (44100, 16000), (22050, 24000)])
def test_resampled_length_scales_with_the_rate_ratio(orig_rate, new_rate):
    audio = tone(440, orig_rate, seconds=0.5)[None, :-3]  # an awkward length
    resampled = resample(audio, orig_rate, new_rate)
    assert resampled.shape == (1, int(np.ceil(audio.shape[1] * new_rate / orig_rate)))
    assert resampled.dtype == np.float32
    assert peak_frequency(resampled[0], new_rate) == pytest.approx(440, abs=3)


def test_resample_keeps_tensors_as_tensors():
    audio = torch.from_numpy(tone(440, 48000, seconds=0.1))[None].repeat(2, 1)
    resampled = resample(audio, 48000, 16000)
    assert isinstance(resampled, torch.Tensor) and resampled.shape == (2, 1600)
    assert resampled.dtype == torch.float32


def test_resample_refuses_integer_audio_and_bad_rates():
    with pytest.raises(MediaError, match="floating point"):
        resample(np.zeros(8, np.int16), 16000, 8000)
    with pytest.raises(MediaError, match="new_rate"):
        resample(np.zeros(8, np.float32), 16000, 0)


def test_mono_downmix_averages_channels(tmp_path):
    left, right = tone(440, 8000, amplitude=0.8), tone(440, 8000, amplitude=0.2)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right]), 8000)
    read, _ = read_audio(path, mono=True)
    assert read.shape == (1, 8000)
    np.testing.assert_allclose(read[0], (left + right) / 2, atol=1e-7)


def test_reads_the_audio_track_of_an_mp4_with_its_exact_length(tmp_path):
    audio = np.stack([tone(440, 24000, seconds=0.7), tone(880, 24000, seconds=0.7)])
    path = write_mp4(tmp_path / "clip.mp4", np.zeros((7, 16, 16, 3), np.uint8), 10, audio, 24000)
    read, rate = read_audio(path)
    assert rate == 24000 and read.shape == audio.shape
    assert np.corrcoef(read[0], audio[0])[0, 1] > 0.99
    resampled, rate = read_audio(path, sample_rate=16000, mono=True)
    assert rate == 16000 and resampled.shape == (1, int(np.ceil(audio.shape[1] * 2 / 3)))


@pytest.mark.parametrize(
    ("audio", "sample_rate", "message"),
    [
        (np.array([0.1, np.inf], np.float32), 16000, "not finite"),
        (np.array([0.1, -1.01], np.float32), 16000, r"outside \[-1, 1\]"),
        (np.zeros(4, np.int32), 16000, "dtype int32"),
        (np.zeros((3, 4), np.float32), 16000, "C in 1..2"),
        (np.zeros(4, np.float32), 0, "sample_rate must be a positive integer"),
        (np.zeros(4, np.float32), 16000.0, "sample_rate must be a positive integer"),
    ],
)
def test_write_wav_refuses_bad_audio_and_writes_nothing(tmp_path, audio, sample_rate, message):
    path = tmp_path / "bad.wav"
    with pytest.raises(MediaError, match=message) as error:
        write_wav(path, audio, sample_rate)
    assert str(path) in str(error.value)
    assert os.listdir(tmp_path) == []


def test_unreadable_audio_raises_media_error_naming_the_file(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("RIFF? no, just text\n")
    silent_video = write_mp4(tmp_path / "silent.mp4", np.zeros((2, 16, 16, 3), np.uint8), 8)
    for path, message in [(text, "not a readable media file"), (silent_video, "no audio track")]:
        with pytest.raises(MediaError, match=message) as error:
            read_audio(path)
        assert str(path) in str(error.value)
    with pytest.raises(MediaError, match="sample_rate"):
        read_audio(silent_video, sample_rate=-1)
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "missing.flac")


def test_the_same_audio_gives_the_same_wav_bytes(tmp_path):
    audio = tone(440, 16000)
    first = write_wav(tmp_path / "a.wav", audio, 16000).read_bytes()
    assert b"PEAK" not in first  # libsndfile's PEAK chunk holds the time of writing
    assert write_wav(tmp_path / "b.wav", audio, 16000).read_bytes() == first


def test_a_truncated_wav_is_read_with_a_warning(tmp_path):
    from omni.media.errors import MediaWarning

    data = write_wav(tmp_path / "whole.wav", tone(440, 16000), 16000).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.warns(
        MediaWarning, match=r"cut.wav: truncated: its data chunk lacks 32,0\d\d bytes; read 0.50 s"
    ):
        audio, _ = read_audio(cut)
    assert audio.shape[-1] < 16000
