"""Request compliance and content-credential status of output files."""

from __future__ import annotations

import numpy as np
import pytest

from omni.eval.metrics.compliance import Request, Tolerances, check_compliance
from omni.eval.metrics.credentials import content_credentials
from omni.media import write_mp4

REQUEST = Request(seconds=2.0, fps=16.0, width=64, height=48, audio=True)


def measured(**changes):
    values = dict(seconds=2.0, fps=16.0, width=64, height=48, has_audio=True) | changes
    return check_compliance(REQUEST, **values)


def test_an_exact_output_complies():
    assert measured()["compliant"]


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        (dict(seconds=2.3), "duration_ok"),
        (dict(fps=24.0), "fps_ok"),
        (dict(width=80), "size_ok"),
        (dict(has_audio=False), "audio_ok"),
    ],
)
def test_each_property_outside_its_tolerance_fails(changes, failed):
    result = measured(**changes)
    assert result[failed] is False and not result["compliant"]


def test_one_frame_of_duration_is_always_allowed_and_tolerances_widen():
    assert measured(seconds=2.0 + 1 / 16)["duration_ok"]
    assert check_compliance(
        REQUEST,
        seconds=2.0,
        fps=16.0,
        width=66,
        height=48,
        has_audio=True,
        tolerances=Tolerances(size_pixels=2),
    )["compliant"]
    with pytest.raises(ValueError, match="fps_fraction"):
        Tolerances(fps_fraction=-1)


def test_nothing_requested_is_nothing_checked():
    result = check_compliance(Request(), seconds=None, fps=None, width=10, height=10, has_audio=False)
    assert result["compliant"] and result["size_ok"] is None and result["audio_ok"] is None


def test_credentials_of_an_unsigned_and_an_unreadable_file(tmp_path):
    pytest.importorskip("c2pa")
    video = tmp_path / "plain.mp4"
    write_mp4(video, np.zeros((4, 16, 16, 3), np.uint8), 16.0)
    assert content_credentials(video)["status"] == "none"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    result = content_credentials(junk)
    assert result["status"] == "unreadable" and "junk.mp4" in result["reason"]
