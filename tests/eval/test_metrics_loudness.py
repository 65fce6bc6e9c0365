"""Integrated loudness (BS.1770-4 / EBU R128) against known values, and level statistics."""

from __future__ import annotations

import numpy as np
import pytest

from omni.eval.metrics.loudness import (
    clipping_ratio,
    integrated_loudness,
    k_weighted,
    k_weighting,
    peak_dbfs,
    silence_ratio,
)


def sine(level_dbfs: float, seconds: float, rate: int, hz: float = 1000.0) -> np.ndarray:
    """A sine whose peak is `level_dbfs` of full scale."""
    return 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)


def test_k_weighting_at_48k_matches_the_standard_table():
    """BS.1770-4 Annex 1 tabulates both stages' coefficients at 48 kHz."""
    shelf, highpass = k_weighting(48000)
    np.testing.assert_allclose(shelf.b, (1.53512485958697, -2.69169618940638, 1.19839281085285), atol=1e-12)
    np.testing.assert_allclose(shelf.a, (1.0, -1.69065929318241, 0.73248077421585), atol=1e-12)
    np.testing.assert_allclose(highpass.b, (1.0, -2.0, 1.0))
    np.testing.assert_allclose(highpass.a, (1.0, -1.99004745483398, 0.99007225036621), atol=1e-12)


def test_frequency_domain_filtering_equals_the_recursive_biquads():
    rate = 16000
    signal = 0.1 * np.random.default_rng(0).standard_normal(4000)
    expected = signal
    for biquad in k_weighting(rate):
        b, a = biquad.b, biquad.a
        out, x1, x2, y1, y2 = np.zeros_like(expected), 0.0, 0.0, 0.0, 0.0
        for n, x in enumerate(expected):
            y = b[0] * x + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
            x2, x1, y2, y1, out[n] = x1, x, y1, y, y
        expected = out
    np.testing.assert_allclose(k_weighted(signal, rate)[0], expected, atol=1e-12)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_sine_at_minus_20_dbfs_reads_minus_23_lufs_in_mono_and_minus_20_in_stereo(rate):
    tone = sine(-20, 5.0, rate)
    assert integrated_loudness(tone, rate) == pytest.approx(-23.01, abs=0.1)
    # Both channels of a stereo file count (weight 1.0 each): 10 log10(2) = 3.01 LU louder than mono.
    assert integrated_loudness(np.stack([tone, tone]), rate) == pytest.approx(-20.0, abs=0.1)


def test_gates_ignore_quiet_passages():
    """EBU Tech 3341 cases 3 and 4: stereo 1 kHz at -36, -23, -36 dBFS for 10, 60, 10 s, and with -72 dBFS
    for 10 s at both ends (under the absolute gate), both read -23.0 LUFS."""
    rate = 16000
    middle = [sine(-36, 10, rate), sine(-23, 60, rate), sine(-36, 10, rate)]
    case_3 = np.concatenate(middle)
    case_4 = np.concatenate([sine(-72, 10, rate), *middle, sine(-72, 10, rate)])
    for mono in (case_3, case_4):
        assert integrated_loudness(np.stack([mono, mono]), rate) == pytest.approx(-23.0, abs=0.1)


def test_surround_channels_weigh_1_41_and_lfe_nothing():
    rate = 16000
    tone = sine(-20, 3.0, rate)
    surround = np.zeros((6, tone.size))
    surround[4] = tone  # Ls
    assert integrated_loudness(surround, rate) == pytest.approx(-23.01 + 10 * np.log10(1.41), abs=0.1)
    lfe_only = np.zeros((6, tone.size))
    lfe_only[3] = tone
    assert np.isnan(integrated_loudness(lfe_only, rate))


def test_undefined_loudness_is_nan_and_odd_layouts_are_refused():
    assert np.isnan(integrated_loudness(np.zeros(32000), 16000))  # silence: no block passes the gate
    assert np.isnan(integrated_loudness(sine(-20, 0.3, 16000), 16000))  # shorter than one block
    with pytest.raises(ValueError, match="3 channels"):
        integrated_loudness(np.zeros((3, 16000)), 16000)
    with pytest.raises(ValueError, match="NaN"):
        integrated_loudness(np.full(16000, np.nan), 16000)


def test_silence_clipping_and_peak():
    rate = 16000
    half_silent = np.concatenate([np.zeros(rate), sine(-20, 1.0, rate)])
    assert silence_ratio(half_silent, rate) == pytest.approx(0.5)
    clipped = np.clip(2 * sine(0, 1.0, rate, hz=10), -1, 1)
    assert clipping_ratio(clipped) == pytest.approx(2 / 3, abs=0.01)  # |2 sin| >= 1 two thirds of the time
    assert clipping_ratio(sine(-1, 1.0, rate)) == 0
    assert peak_dbfs(sine(-6, 1.0, rate)) == pytest.approx(-6.0, abs=0.01)
