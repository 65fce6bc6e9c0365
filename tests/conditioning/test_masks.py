"""Task masks: every task is a set of clean frames; times line up across streams."""

import pytest
import torch

from omni.conditioning.masks import (
    condition_token_mask,
    frames_before,
    frames_in_range,
    noisy_stream,
    sample_task_mask,
    sample_tasks,
)
from omni.tasks import TRAINED

VIDEO_FRAMES, AUDIO_FRAMES = 9, 53  # 33 frames at 16 fps; 2.06 s of 16 kHz audio at 25 latent frames/s
VIDEO_STEP, AUDIO_STEP = 0.25, 0.04


def mask(task, seed=0):
    return sample_task_mask(
        task, VIDEO_FRAMES, AUDIO_FRAMES, VIDEO_STEP, AUDIO_STEP, torch.Generator().manual_seed(seed)
    )


def test_conditioning_tasks_give_the_right_frames():
    assert mask("i2v").video.tolist() == [True] + [False] * 8
    assert mask("flf").video.tolist() == [True] + [False] * 7 + [True]
    assert mask("a2v").audio.all() and not mask("a2v").video.any()
    assert mask("v2a").video.all() and not mask("v2a").audio.any()
    assert mask("t2v").audio is None and mask("t2a").video is None
    t2i = mask("t2i")
    assert t2i.video is None and t2i.audio is None and t2i.image.tolist() == [False]
    assert mask("ref").image.tolist() == [True]


def test_every_task_generates_something():
    for task in TRAINED:
        for seed in range(20):
            m = mask(task, seed)
            noisy = [~x for x in (m.video, m.audio, m.image) if x is not None]
            assert any(n.any() for n in noisy), (task, seed)


def test_extension_context_covers_the_same_time_in_video_and_audio():
    for seed in range(30):
        m = mask("extend", seed)
        kept = int(m.video.sum())
        assert 1 <= kept < VIDEO_FRAMES and m.video[:kept].all()
        context_seconds = (kept - 1) * VIDEO_STEP
        audio_kept = int(m.audio.sum())
        assert abs((audio_kept - 1) * AUDIO_STEP - context_seconds) < AUDIO_STEP + 1e-9


def test_retake_regenerates_one_contiguous_range():
    for seed in range(30):
        m = mask("retake", seed)
        for clean in (m.video, m.audio):
            noisy = (~clean).nonzero().flatten()
            if len(noisy):
                assert noisy.tolist() == list(range(noisy[0], noisy[-1] + 1))


def test_time_helpers():
    assert frames_before(5, 0.25, 0.5).tolist() == [True, True, True, False, False]
    # Latent frame i spans ((i - 1) * 0.25, i * 0.25]: a range inside frame 2's span touches frame 2 only.
    assert frames_in_range(5, 0.25, 0.3, 0.45).tolist() == [False, False, True, False, False]


def test_dropping_a_condition_group_removes_only_its_clean_tokens():
    clean = torch.tensor([[True, False, True], [True, False, True]])
    kept = condition_token_mask(clean, torch.tensor([True, False]))
    assert kept.tolist() == [[False, True, False], [True, True, True]]
    per_token = torch.zeros(2, 2, 1, 2, dtype=torch.bool)  # (B, F, H/ph, W/pw): one clean token
    per_token[:, 0, 0, 1] = True
    kept = condition_token_mask(per_token, torch.tensor([True, True]))
    assert (~kept).sum() == 2 and not kept[:, 0, 0, 1].any()


def test_noisy_stream_gives_clean_tokens_timestep_zero_and_hides_absent_samples():
    latents, clean = torch.zeros(2, 4, 2, 2, 2), torch.tensor([[True, False], [True, False]])
    none_dropped, present = torch.tensor([False, False]), torch.tensor([True, False])  # sample 2 lacks it
    stream = noisy_stream(
        "video", latents, clean, torch.tensor([500.0, 700.0]), none_dropped, present=present
    )
    assert stream.timesteps.tolist() == [[0.0, 500.0], [0.0, 700.0]]
    assert stream.token_mask.tolist() == [[True, True], [False, False]]
    stream = noisy_stream("video", latents, clean, 900.0, none_dropped)  # one timestep for all samples
    assert stream.token_mask is None and stream.timesteps.tolist() == [[0.0, 900.0], [0.0, 900.0]]


def test_task_sampling_follows_weights_and_rejects_unknown_tasks():
    picks = sample_tasks({"t2av": 3.0, "i2v": 1.0, "a2v": 0.0}, 4000, torch.Generator().manual_seed(0))
    assert 0.7 < picks.count("t2av") / 4000 < 0.8 and "a2v" not in picks
    with pytest.raises(ValueError, match="unknown training task"):
        sample_tasks({"t2x": 1.0}, 1, torch.Generator())
    with pytest.raises(ValueError, match="unknown training task"):
        mask("t2x")
