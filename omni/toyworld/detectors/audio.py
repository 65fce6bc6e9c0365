"""Beep detection in a soundtrack: onset times from a band-limited energy envelope, pitch from an FFT peak.

The envelope is the magnitude of the analytic signal restricted to the band of the beeps'
fundamentals (the room's hum and noise and the square waves' overtones fall outside it), smoothed
over a millisecond. An onset is an upward crossing of an adaptive threshold (a margin over the
clip's noise floor, and not far below the loudest beep); its time is refined by extrapolating the attack's rise back to the floor, which
is exact for a linear attack and unbiased by the threshold's level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omni.eval.metrics.signals import mono
from omni.toyworld.spec import PITCH_OF_COLOR

BAND_HZ = (240.0, 880.0)  # passes every colour's fundamental, not the hum nor the 3rd harmonics
BAND_TAPER_HZ = 60.0  # raised-cosine edges keep the band filter's ringing short
SMOOTH_SECONDS = 0.001
EDGE_FADE_SECONDS = 0.02
EDGE_PAD_SECONDS = 0.1
THRESHOLD_DB = 15.0  # an onset rises this far above the noise floor
DYNAMIC_RANGE_DB = 30.0  # ... and to within this of the loudest beep (a near-silent floor is no guide)
MIN_LEVEL = 1e-3  # ... and above -60 dBFS: fainter sounds are filter leakage, not beeps
CONFIRM_DB = 6.0  # ... and then at least this much more within CONFIRM_SECONDS (not a noise blip)
CONFIRM_SECONDS = 0.02
REFRACTORY_SECONDS = 0.06
RISE_LEVELS = (0.2, 0.6)  # fractions of the peak above the floor that the attack line goes through
PITCH_WINDOW_SECONDS = (0.008, 0.048)  # after the onset: past the attack, within the beep
PITCH_RANGE_HZ = (250.0, 1000.0)
MAX_PITCH_ERROR_SEMITONES = 1.0


@dataclass(frozen=True)
class Beep:
    """A detected beep: onset `time` in seconds, `pitch_hz`, and the nearest colour (None if off-palette)."""

    time: float
    pitch_hz: float
    color: str | None


def band_envelope(audio: np.ndarray, sample_rate: int, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    """(N,) float64 amplitude envelope of `audio` (N,) within `band` Hz: |analytic signal|, smoothed.

    The clip's ends are faded over EDGE_FADE_SECONDS and padded with silence first, so the FFT filter
    neither wraps the end onto the start nor turns a cut-off hum into a click that reads as an onset.
    """
    audio = mono(audio)
    fade = min(round(EDGE_FADE_SECONDS * sample_rate), audio.size // 2)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    window = np.ones(audio.size)
    if fade:
        window[:fade], window[-fade:] = ramp, ramp[::-1]
    pad = round(EDGE_PAD_SECONDS * sample_rate)
    padded = np.pad(audio * window, pad)
    freqs = np.fft.fftfreq(padded.size, 1 / sample_rate)
    low, high = band
    gain = np.clip((freqs - (low - BAND_TAPER_HZ / 2)) / BAND_TAPER_HZ, 0, 1) * np.clip(
        ((high + BAND_TAPER_HZ / 2) - freqs) / BAND_TAPER_HZ, 0, 1
    )
    gain = np.sin(np.pi / 2 * gain) ** 2  # raised-cosine edges; zero for negative frequencies
    analytic = np.fft.ifft(np.fft.fft(padded) * 2 * gain)[pad : pad + audio.size]
    width = 2 * round(SMOOTH_SECONDS * sample_rate / 2) + 1  # odd, so the smoothing is centred
    return np.convolve(np.abs(analytic), np.ones(width) / width, mode="same")


def detect_onsets(
    audio: np.ndarray,
    sample_rate: int,
    band: tuple[float, float] = BAND_HZ,
    threshold_db: float = THRESHOLD_DB,
) -> np.ndarray:
    """(K,) float64 onset times in seconds of the beeps in `audio` (N,) mono, sorted."""
    envelope = band_envelope(audio, sample_rate, band)
    floor = max(float(np.median(envelope)), 1e-9)
    threshold = max(
        floor * 10 ** (threshold_db / 20), float(envelope.max()) * 10 ** (-DYNAMIC_RANGE_DB / 20), MIN_LEVEL
    )
    confirm = threshold * 10 ** (CONFIRM_DB / 20)
    above = envelope > threshold
    rises = np.flatnonzero(~above[:-1] & above[1:]) + 1
    window = round(CONFIRM_SECONDS * sample_rate)
    onsets: list[float] = []
    for rise in rises:
        if onsets and rise / sample_rate - onsets[-1] < REFRACTORY_SECONDS:
            continue
        segment = envelope[rise : rise + window]
        if segment.max() < confirm:
            continue
        peak_at = rise + int(segment.argmax())
        onsets.append(_attack_start(envelope, peak_at, floor) / sample_rate)
    return np.array(onsets, dtype=np.float64)


def _attack_start(envelope: np.ndarray, peak_at: int, floor: float) -> float:
    """Sample position (fractional) where the attack before `peak_at`, extended as a line, leaves the floor."""
    peak = envelope[peak_at]
    levels = [floor + fraction * (peak - floor) for fraction in RISE_LEVELS]
    crossings = []
    for level in levels:
        below = np.flatnonzero(envelope[: peak_at + 1] < level)
        if below.size == 0:
            return float(peak_at)
        i = below[-1]  # last sample under the level; the envelope crosses it between i and i + 1
        crossings.append(i + (level - envelope[i]) / max(envelope[i + 1] - envelope[i], 1e-12))
    (t_low, t_high), (low, high) = crossings, levels
    return float(t_low - (t_high - t_low) * (low - floor) / (high - low))


def estimate_pitch(
    audio: np.ndarray, sample_rate: int, onset: float, pitch_range: tuple[float, float] = PITCH_RANGE_HZ
) -> float:
    """Frequency in Hz of the strongest peak within `pitch_range` in a Hann window after `onset` seconds.

    The peak is refined by parabolic interpolation of the log magnitude (sub-bin accuracy).
    """
    audio = mono(audio)
    start = round((onset + PITCH_WINDOW_SECONDS[0]) * sample_rate)
    stop = round((onset + PITCH_WINDOW_SECONDS[1]) * sample_rate)
    segment = audio[max(start, 0) : min(stop, audio.size)]
    if segment.size < 16:
        return float("nan")
    size = 1 << 15
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size), size))
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    inside = np.flatnonzero((freqs >= pitch_range[0]) & (freqs <= pitch_range[1]))
    k = int(inside[spectrum[inside].argmax()])
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return float((k + offset) * sample_rate / size)


def color_of_pitch(pitch_hz: float, max_error_semitones: float = MAX_PITCH_ERROR_SEMITONES) -> str | None:
    """The colour whose pitch is nearest in semitones, or None if none is within `max_error_semitones`."""
    if not np.isfinite(pitch_hz) or pitch_hz <= 0:
        return None
    distances = {c: abs(12 * np.log2(pitch_hz / p)) for c, p in PITCH_OF_COLOR.items()}
    color = min(distances, key=distances.get)
    return color if distances[color] <= max_error_semitones else None


def detect_beeps(audio: np.ndarray, sample_rate: int) -> list[Beep]:
    """Every beep in `audio` (N,) or (C, N) (channels averaged): onset, pitch and colour."""
    audio = mono(audio)
    beeps = []
    for onset in detect_onsets(audio, sample_rate):
        pitch = estimate_pitch(audio, sample_rate, float(onset))
        beeps.append(Beep(time=float(onset), pitch_hz=pitch, color=color_of_pitch(pitch)))
    return beeps
