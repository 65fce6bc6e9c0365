"""Audio-video sync offset of any clip, without learned weights: when the sound's events happen relative to
the picture's.

The picture's events are changes of motion (`motion_change_envelope`: a bounce, an impact, a start or stop);
the sound's are onsets (`onset_strength`, spectral flux). Their cross-correlation over candidate lags peaks
at the lag that lines them up. Sign: a positive offset means the audio is late (an event heard `offset_ms`
after it is seen); shifting a clip's audio later by d ms raises its offset by d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from omni.eval.metrics.signals import Envelope, motion_change_envelope, onset_strength

MAX_LAG_SECONDS = 0.5
# The correlation peak's main lobe reaches this far to each side (a frame of sampling, a frame of
# smoothing); confidence compares the peak with the correlation outside it.
PEAK_HALF_WIDTH_FRAMES = 1
MIN_OVERLAP_FRAMES = 8  # lags at which fewer visual samples overlap the audio are not considered
# Below this confidence the offset is undetermined; measured on toy-world clips in docs/benchmarking.md.
CONFIDENCE_THRESHOLD = 6.0
SILENCE_PEAK = 1e-4  # audio whose peak stays under -80 dBFS has no events to line up
# Sound whose smoothed onset envelope never rises this far over its median has no distinct events either
# (steady room tone or noise reads 1.0-1.3; a toy-world beep over room noise 2.3 or more).
MIN_AUDIO_EVENT_CONTRAST = 2.0
# Each side needs this many distinct events (peaks rising EVENT_PEAK_FRACTION of the way from the median to
# the maximum, a frame or more apart): a single event lines up with any single sound. This also discards
# the one burst of change H.264 encoders make as the first P-frames refine the first I-frame of a still clip.
MIN_EVENTS = 2
EVENT_PEAK_FRACTION = 0.25
# A picture whose motion-change envelope never exceeds this (per pixel; a small toy object's bounce gives
# 1e-7 or more) is still: what changes is codec noise under the motion noise level.
STILL_MOTION = 1e-9
# ... and one whose envelope never rises this far over its median has steady motion only (an orbit, a
# pan: up to 2.9), no distinct events; toy-world bounces reach 3.6 or more.
MIN_VISUAL_EVENT_CONTRAST = 3.0


@dataclass(frozen=True, eq=False)
class SyncEstimate:
    """What `av_sync` found.

    Attributes:
        offset_ms: audio time minus video time of the events, in ms (positive: audio late); None when
            undetermined (`reason` says why).
        confidence: how far the correlation peak stands above the correlation at the other lags, in
            standard deviations of those values; 0 when either side has no distinct events.
        peak_correlation: the Pearson correlation of the two envelopes at the best lag.
        raw_offset_ms: the best lag even when the confidence is too low (None when there are no events).
        reason: "" when determined, else why not.
        lags_ms, correlation: the correlation curve, for plots (empty when there are no events).
    """

    offset_ms: float | None
    confidence: float
    peak_correlation: float
    raw_offset_ms: float | None
    reason: str
    lags_ms: np.ndarray
    correlation: np.ndarray

    @property
    def determined(self) -> bool:
        return self.offset_ms is not None


def av_sync(
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    max_lag_seconds: float = MAX_LAG_SECONDS,
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    *,
    analysed: np.ndarray | None = None,
) -> SyncEstimate:
    """Estimate the audio-video offset of (F, H, W, 3) uint8 `frames` at `fps` and (N,) or (C, N) `audio`.

    Lags within +-`max_lag_seconds` are searched on the onset envelope's grid (4 ms) and the peak is
    refined by a parabola through its neighbours. `analysed`: the frames' `analysis_frames`, if at hand.
    """
    if not max_lag_seconds > 0:
        raise ValueError(f"max_lag_seconds must be positive, got {max_lag_seconds}")
    if np.max(np.abs(audio), initial=0.0) < SILENCE_PEAK:  # before the envelopes: it needs neither
        return SyncEstimate(None, 0.0, 0.0, None, "silent audio", np.zeros(0), np.zeros(0))
    visual = motion_change_envelope(frames, fps, analysed=analysed)
    sound = frame_smoothed(onset_strength(audio, sample_rate), 1 / fps)
    missing = _missing_events(visual, sound, 1 / fps)
    if missing:
        return SyncEstimate(None, 0.0, 0.0, None, missing, np.zeros(0), np.zeros(0))
    lags, correlation = lagged_correlation(visual, sound, max_lag_seconds)
    if not np.isfinite(correlation).any():
        return SyncEstimate(None, 0.0, 0.0, None, "clip too short", lags * 1e3, correlation)
    step = lags[1] - lags[0]
    best = int(np.nanargmax(correlation))
    offset_ms = 1e3 * (lags[best] + _parabolic_shift(correlation, best) * step)
    confidence = peak_prominence(correlation, best, exclude=round(PEAK_HALF_WIDTH_FRAMES / fps / step))
    determined = confidence >= confidence_threshold
    return SyncEstimate(
        offset_ms=offset_ms if determined else None,
        confidence=confidence,
        peak_correlation=float(correlation[best]),
        raw_offset_ms=offset_ms,
        reason="" if determined else f"confidence {confidence:.1f} < {confidence_threshold:g}",
        lags_ms=lags * 1e3,
        correlation=correlation,
    )


def _missing_events(visual: Envelope, sound: Envelope, frame_seconds: float) -> str:
    """Why a clip with sound has nothing to line up ("" when both sides have distinct events)."""
    if visual.values.size < MIN_OVERLAP_FRAMES or sound.values.size < 2:
        return "clip too short"
    if np.max(visual.values) < STILL_MOTION:
        return "still picture"
    if np.max(visual.values) < MIN_VISUAL_EVENT_CONTRAST * np.median(visual.values):
        return "no distinct visual events"
    if np.max(sound.values) < MIN_AUDIO_EVENT_CONTRAST * np.median(sound.values):
        return "no distinct sound events"
    if count_events(visual) < MIN_EVENTS:
        return "fewer than two distinct visual events"
    if count_events(sound, separation_seconds=frame_seconds) < MIN_EVENTS:
        return "fewer than two distinct sound events"
    return ""


def count_events(envelope: Envelope, separation_seconds: float = 0.0) -> int:
    """Distinct peaks of an envelope: local maxima rising EVENT_PEAK_FRACTION of the way from its median to
    its maximum, counted highest first and at least `separation_seconds` (and one sample) from each other."""
    values, times = envelope.values, envelope.times
    floor = np.median(values)
    level = floor + EVENT_PEAK_FRACTION * (values.max() - floor)
    padded = np.pad(values, 1, constant_values=-np.inf)
    peaks = np.flatnonzero((values >= padded[:-2]) & (values > padded[2:]) & (values >= level))
    kept: list[float] = []
    for index in peaks[np.argsort(values[peaks])[::-1]]:
        if all(abs(times[index] - t) > max(separation_seconds, 1e-9) for t in kept):
            kept.append(times[index])
    return len(kept)


def frame_smoothed(sound: Envelope, frame_seconds: float) -> Envelope:
    """The onset envelope smoothed by a triangle reaching one frame to each side.

    A visual event between two frames is split between them in proportion to its distance from each, so
    this is what the sound's events look like when sampled the way the picture was.
    """
    if sound.times.size < 2:
        return sound
    step = float(sound.times[1] - sound.times[0])
    half = max(1, round(frame_seconds / step))
    triangle = 1 - np.abs(np.arange(-half, half + 1)) / (half + 1)
    return Envelope(np.convolve(sound.values, triangle / triangle.sum(), mode="same"), sound.times)


def lagged_correlation(
    visual: Envelope, sound: Envelope, max_lag_seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    """(lags in s, Pearson correlation per lag) of the visual envelope with the sound envelope shifted by lag.

    The sound is read at each visual sample's time plus the lag (linear interpolation on its grid); lags
    at which fewer than MIN_OVERLAP_FRAMES visual samples fall inside the sound get NaN.
    """
    step = float(sound.times[1] - sound.times[0])
    count = math.floor(max_lag_seconds / step)
    lags = np.arange(-count, count + 1) * step
    at = visual.times[None, :] + lags[:, None]  # (L, J) times at which the sound is read
    inside = (at >= sound.times[0]) & (at <= sound.times[-1])
    heard = np.interp(at, sound.times, sound.values)
    correlation = np.full(len(lags), np.nan)
    for i in range(len(lags)):
        mask = inside[i]
        if mask.sum() >= MIN_OVERLAP_FRAMES:
            correlation[i] = _pearson(visual.values[mask], heard[i, mask])
    return lags, correlation


def peak_prominence(correlation: np.ndarray, best: int, exclude: int) -> float:
    """Height of the peak at `best` over the other lags' correlation, in their standard deviations.

    Lags within `exclude` steps of the peak (its own slopes) are left out of the reference values.
    """
    values = np.asarray(correlation, dtype=np.float64)
    index = np.arange(values.size)
    others = values[(np.abs(index - best) > exclude) & np.isfinite(values)]
    if others.size < 2 or not np.std(others) > 0:
        return 0.0
    return float((values[best] - np.mean(others)) / np.std(others))


def _parabolic_shift(values: np.ndarray, best: int) -> float:
    """Sub-step position of the peak of a parabola through values[best - 1 : best + 2], in [-0.5, 0.5]."""
    if best == 0 or best == len(values) - 1:
        return 0.0
    a, b, c = values[best - 1 : best + 2]
    if not (np.isfinite(a) and np.isfinite(c)) or a - 2 * b + c >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y / denominator) if denominator > 0 else float("nan")
