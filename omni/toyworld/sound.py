"""The toy world's soundtrack: a quiet room ambience plus one beep per wall hit, at sample-exact times.

Each object's voice takes its timbre from its shape and its pitch from its colour, so both can be
heard as well as seen. A beep starts exactly at the bounce time (a real number, not a sample index):
its waveform is evaluated at every sample's own time relative to the bounce.
"""

from __future__ import annotations

import numpy as np

from omni.toyworld.motion import bounces
from omni.toyworld.spec import SceneSpec

# (harmonic number, amplitude): circle = pure sine, square = odd harmonics falling as 1/n (square-ish),
# triangle = odd harmonics falling as 1/n^2 with alternating sign (a triangle wave). Only odd harmonics,
# so no voice's overtone lands on another colour's fundamental.
HARMONICS_OF_SHAPE = {
    "circle": ((1, 1.0),),
    "square": ((1, 1.0), (3, 1 / 3), (5, 1 / 5), (7, 1 / 7)),
    "triangle": ((1, 1.0), (3, -1 / 9), (5, 1 / 25), (7, -1 / 49)),
}
BEEP_SECONDS = 0.08
BEEP_ATTACK_SECONDS = 0.006  # linear rise: a sharp onset to measure sync by
BEEP_DECAY_SECONDS = 0.025  # exponential decay time constant after the attack
BEEP_RELEASE_SECONDS = 0.008  # cosine fade to silence at the end, so no click
BEEP_PEAK = 0.5  # -6 dBFS per beep, leaving headroom for two overlapping beeps
AMBIENT_RMS = BEEP_PEAK * 10 ** (-30 / 20)  # room sound 30 dB below the beeps
HEADROOM_PEAK = 0.95  # the mix is scaled down (never up) to stay under this


def beep_envelope(local_time: np.ndarray) -> np.ndarray:
    """Amplitude in [0, 1] at `local_time` seconds after the onset (zero outside [0, BEEP_SECONDS))."""
    t = np.asarray(local_time, dtype=np.float64)
    attack = t / BEEP_ATTACK_SECONDS
    decay = np.exp(-(t - BEEP_ATTACK_SECONDS) / BEEP_DECAY_SECONDS)
    release_start = BEEP_SECONDS - BEEP_RELEASE_SECONDS
    release = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - release_start) / BEEP_RELEASE_SECONDS, 0, 1))
    envelope = np.where(t < BEEP_ATTACK_SECONDS, attack, decay * release)
    return np.where((t >= 0) & (t < BEEP_SECONDS), envelope, 0.0)


def voice(shape: str, pitch_hz: float, local_time: np.ndarray) -> np.ndarray:
    """The shape's waveform at `pitch_hz`, with peak amplitude 1, at `local_time` seconds."""
    phase = 2 * np.pi * pitch_hz * np.asarray(local_time, dtype=np.float64)
    harmonics = HARMONICS_OF_SHAPE[shape]
    wave = sum(amplitude * np.sin(n * phase) for n, amplitude in harmonics)
    return wave / _voice_peak(shape)


def _voice_peak(shape: str) -> float:
    """Peak of the unnormalised waveform over one period, so every timbre has the same peak."""
    phase = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    return float(np.abs(sum(a * np.sin(n * phase) for n, a in HARMONICS_OF_SHAPE[shape])).max())


def ambience(scene: SceneSpec) -> np.ndarray:
    """(N,) float64 room sound at AMBIENT_RMS: a 50 Hz hum with overtones, or soft low-passed noise."""
    n, rate = scene.num_samples, scene.sample_rate
    rng = np.random.default_rng(scene.seed)
    if scene.ambient == "hum":
        t = np.arange(n) / rate
        phases = rng.uniform(0, 2 * np.pi, size=3)
        sound = sum(
            a * np.sin(2 * np.pi * f * t + p) for f, a, p in zip((50, 100, 150), (1, 0.5, 0.2), phases)
        )
    else:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / rate)
        # Pink (1/f power) with a gentle roll-off above 500 Hz: a soft rumble, not a hiss.
        shaping = 1 / np.sqrt(np.maximum(freqs, 20.0)) / (1 + (freqs / 500.0) ** 2)
        sound = np.fft.irfft(spectrum * shaping, n)
    sound = np.asarray(sound, dtype=np.float64)
    return sound * (AMBIENT_RMS / max(float(np.sqrt(np.mean(sound**2))), 1e-12))


def beep_track(scene: SceneSpec) -> np.ndarray:
    """(N,) float64 all objects' beeps, each starting exactly at one of its wall hits."""
    n, rate = scene.num_samples, scene.sample_rate
    track = np.zeros(n, dtype=np.float64)
    length = int(np.ceil(BEEP_SECONDS * rate)) + 1
    for obj in scene.objects:
        for hit in bounces(scene, obj):
            first = int(np.ceil(hit.time * rate))
            samples = np.arange(first, min(first + length, n))
            local = samples / rate - hit.time
            track[samples] += BEEP_PEAK * beep_envelope(local) * voice(obj.shape, obj.pitch_hz, local)
    return track


def render_audio(scene: SceneSpec) -> np.ndarray:
    """(N,) float32 mono soundtrack in [-1, 1]: ambience plus beeps, scaled down only if it would clip."""
    mix = ambience(scene) + beep_track(scene)
    peak = float(np.abs(mix).max()) if mix.size else 0.0
    if peak > HEADROOM_PEAK:
        mix *= HEADROOM_PEAK / peak
    return mix.astype(np.float32)
