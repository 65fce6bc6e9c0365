"""The codecs that need no training: exact for video, and for audio every beep keeps its onset and pitch."""

import numpy as np
import pytest
import torch

from omni.models.codecs import MelAudioCodec, PixelVideoCodec
from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline
from omni.toyworld import render, sample_scene
from omni.toyworld.detectors.audio import detect_beeps
from omni.toyworld.detectors.metrics import match_events, score_clip


@pytest.fixture(scope="module")
def toy():
    return build_pipeline("toy")


def test_pixel_codec_returns_every_clip_exactly():
    codec = PixelVideoCodec(scale_factor_temporal=2, scale_factor_spatial=2)
    frames = torch.randint(0, 256, (2, 3, 9, 16, 32)).float() / 127.5 - 1  # (B, C, F, H, W)
    latents = codec.encode(frames).latent_dist.mode()
    assert latents.shape == (2, 24, 5, 8, 16)  # 1 + (9 - 1) / 2 latent frames, 3 x 2 x 2 x 2 channels
    assert torch.equal(codec.decode(latents).sample, frames)
    still = frames[:, :, :1]  # an image is a one-frame clip with the same layout as a clip's start
    assert torch.equal(codec.encode(still).latent_dist.mode(), latents[:, :, :1])


def test_pixel_codec_names_a_clip_it_cannot_take():
    codec = PixelVideoCodec(scale_factor_temporal=4, scale_factor_spatial=2)
    with pytest.raises(ValueError, match="1 \\+ 4k frames .* got 8 frames of 16x16"):
        codec.encode(torch.zeros(1, 3, 8, 16, 16))
    with pytest.raises(ValueError, match="latents_std needs 48 values"):
        PixelVideoCodec(scale_factor_temporal=4, scale_factor_spatial=2, latents_std=[1.0])


def test_mel_codec_is_exact_and_causal():
    codec = MelAudioCodec(mel_bins=8, log_mel_mean=-5.0, log_mel_std=3.0)
    mel = torch.randn(2, 1, 13, 8)
    latents = codec.encode(mel).latent_dist.mode()
    assert latents.shape == (2, 4, 4, 8)  # 1 + (13 - 1) / 4 latent frames
    torch.testing.assert_close(codec.decode(latents).sample, mel)
    changed = mel.clone()
    changed[:, :, 9:] += 1  # a later mel frame changes no earlier latent frame
    assert torch.equal(codec.encode(changed).latent_dist.mode()[:, :, :3], latents[:, :, :3])


def test_true_toy_clips_through_the_codecs_score_like_the_clips_themselves(toy):
    """Issue target: true clips through the codecs score on every detector; onsets within 10 ms."""
    onset_errors, checked = [], 0
    for seed in range(20_000, 20_006):
        scene = sample_scene(seed, num_objects=1, motion=("horizontal", "vertical", "diagonal")[seed % 3])
        clip = render(scene)
        frames = toy.decode_video(toy.encode_video(clip.frames))[0]
        assert np.array_equal(frames, clip.frames)
        audio = toy.decode_audio(toy.encode_audio(clip.audio[None]), clip.audio.shape[-1])[0, 0]
        scores = score_clip(frames, audio, scene.fps, scene.sample_rate, scene)
        assert scores["color_accuracy"] == scores["shape_accuracy"] == scores["motion_accuracy"] == 1.0
        truth, decoded = detect_beeps(clip.audio, 16000), detect_beeps(audio, 16000)
        matching = match_events([b.time for b in truth], [b.time for b in decoded], 0.05)
        assert matching.misses == matching.false_alarms == 0
        assert [decoded[d].color for _, d in matching.pairs] == [truth[r].color for r, _ in matching.pairs]
        onset_errors += list(np.abs(matching.errors))
        checked += len(truth)
    assert checked >= 6 and max(onset_errors) < 0.010


def test_a_pipeline_with_fixed_codecs_saves_loads_and_generates(toy, tmp_path):
    toy.save_pretrained(tmp_path / "toy")
    pipe = OmniPipeline.from_pretrained(tmp_path / "toy")
    assert type(pipe.vae) is PixelVideoCodec and pipe.vae.config.latents_std == toy.vae.config.latents_std
    out = pipe("a red ball", task="t2av", seconds=0.5, num_inference_steps=2, progress=False)
    assert out.frames.shape == (1, 8, 64, 64, 3) and out.audio.shape == (1, 1, 8000)
