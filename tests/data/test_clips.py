"""Conforming clips: nearest-frame retiming, cover-crop resizing, duration buckets, audio cut to the video."""

from __future__ import annotations

import numpy as np
import pytest

from omni.data.clips import ClipFormat, ClipRejected, SourceClip, conform
from omni.media.geometry import resize_cover

FORMAT = ClipFormat(fps=8.0, height=32, width=32, frames=(9, 17), sample_rate=16000, audio_channels=1)


def numbered_clip(
    count: int, fps: float, audio: np.ndarray | None = None, rate: int | None = None
) -> SourceClip:
    """Frame i is filled with the value 3 * i, so a conformed frame tells which source frame it came from."""
    frames = np.repeat((3 * np.arange(count, dtype=np.uint8))[:, None, None, None], 32 * 32 * 3).reshape(
        count, 32, 32, 3
    )
    return SourceClip("numbered", frames, fps, audio, rate, "numbered frames")


def test_retimes_to_the_nearest_frame_and_keeps_the_longest_bucket_that_fits():
    clip = conform(numbered_clip(40, 16.0), FORMAT)  # 2.5 s -> 20 frames at 8 fps -> the 17-frame bucket
    assert clip.frames.shape == (17, 32, 32, 3)
    np.testing.assert_array_equal(clip.frames[:, 0, 0, 0], 3 * 2 * np.arange(17))  # every other source frame
    assert conform(numbered_clip(16, 8.0), FORMAT).frames.shape[0] == 9  # 16 frames: too few for 17


def test_a_clip_shorter_than_the_shortest_bucket_is_rejected():
    with pytest.raises(
        ClipRejected, match="8 frames at 8 fps .* shorter than the shortest allowed 9"
    ) as error:
        conform(numbered_clip(16, 16.0), FORMAT)
    assert error.value.reason == "too_short"


def test_resize_cover_keeps_the_aspect_ratio_and_crops_the_center():
    wide = np.zeros((48, 64, 3), np.uint8)
    wide[:, :4] = wide[:, -4:] = (255, 0, 0)  # red strips outside the centered 48x48 square
    wide[:, 4:-4] = (0, 0, 255)
    out = resize_cover(wide, 32, 32)
    assert out.shape == (32, 32, 3)
    assert out[..., 0].max() < 8 and out[..., 2].min() > 247  # the strips are cropped away, not squeezed in

    tall = np.zeros((64, 32, 3), np.uint8)
    tall[:16] = 255  # the top quarter lies outside the centered 32x32 square
    np.testing.assert_array_equal(resize_cover(tall, 32, 32), tall[16:48])


def test_audio_is_mixed_resampled_and_cut_to_the_video_duration():
    stereo = np.stack([np.full(44100 * 3, 0.5), np.full(44100 * 3, -0.1)]).astype(
        np.float32
    )  # 3 s at 44.1 kHz
    clip = conform(numbered_clip(20, 8.0, stereo, 44100), FORMAT)
    assert clip.audio.shape == (1, 17 * 2000) and clip.audio.dtype == np.float32
    np.testing.assert_allclose(clip.audio[0, 1000:-1000], 0.2, atol=1e-3)  # the channel mean
    assert (clip.silent, clip.audio_padding) == (False, 0)


def test_short_audio_is_padded_and_missing_audio_is_silence():
    short = np.full((1, 16000), 0.25, np.float32)  # 1 s under a 17-frame (2.125 s) video
    clip = conform(numbered_clip(17, 8.0, short, 16000), FORMAT)
    assert clip.audio_padding == 34000 - 16000 and not clip.audio[0, 16000:].any()
    silent = conform(numbered_clip(17, 8.0), FORMAT)
    assert silent.silent and silent.audio.shape == (1, 34000) and not silent.audio.any()


def test_reference_frame_is_the_middle_frame():
    clip = conform(numbered_clip(9, 8.0), FORMAT)
    np.testing.assert_array_equal(clip.reference_frame, clip.frames[4])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"frames": (10,)},
            r"num_frames=10 breaks the video VAE's 1 \+ 4k rule; the nearest valid value is 9",
        ),
        ({"frames": (17, 9)}, r"frames must be strictly ascending without repeats, got \[17, 9\]"),
        ({"frames": ()}, "frames must list at least one frame count"),
        ({"height": 50}, "height=50 is not a multiple of 16; the nearest valid value is 48"),
        ({"sample_rate": 0}, "sample_rate must be a positive integer, got 0"),
    ],
)
def test_bad_formats_are_named(changes, message):
    fields = {
        "fps": 8.0,
        "height": 32,
        "width": 32,
        "frames": (9,),
        "sample_rate": 16000,
        "audio_channels": 1,
    }
    with pytest.raises(ValueError, match=message):
        ClipFormat(**{**fields, **changes})


def test_a_malformed_source_clip_is_refused():
    with pytest.raises(ValueError, match=r"Clip.frames must be \(F, H, W, 3\) uint8"):
        SourceClip("x", np.zeros((9, 32, 32), np.uint8), 8.0, None, None, "caption")
    with pytest.raises(ValueError, match="clip x: caption must be a non-empty string"):
        SourceClip("x", np.zeros((9, 32, 32, 3), np.uint8), 8.0, None, None, "")


def test_subject_boxes_follow_the_retiming_and_the_crop():
    """A 48x64 clip at 16 fps covered to 32x32 at 8 fps: every other box, scaled by 2/3, the 8 px cropped from
    the left taken off, clipped to the frame; a clip without boxes has none."""
    frames = np.zeros((18, 48, 64, 3), np.uint8)
    boxes = np.stack([np.array([10.0 + i, 6.0, 40.0 + i, 30.0]) for i in range(18)])
    clip = conform(SourceClip("boxed", frames, 16.0, None, None, "a box", subject_boxes=boxes), FORMAT)
    assert clip.subject_boxes.shape == (9, 4)
    expected = (boxes[::2] - [8, 0, 8, 0]) * 32 / 48
    np.testing.assert_allclose(clip.subject_boxes, np.clip(expected, 0, 32), atol=1e-5)
    assert conform(numbered_clip(16, 8.0), FORMAT).subject_boxes is None
    with pytest.raises(ValueError, match=r"subject_boxes must be \(frames, 4\) = \(18, 4\), got \(18, 2\)"):
        SourceClip("boxed", frames, 16.0, None, None, "a box", subject_boxes=boxes[:, :2])
