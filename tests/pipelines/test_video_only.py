"""A folder without audio expert, audio VAE or vocoder (a converted Wan) runs every video task and refuses
the sound tasks by name; parts that do not fit together are named when a folder loads."""

import shutil

import numpy as np
import pytest

from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline, build_transformer, load_preset


@pytest.fixture(scope="module")
def video_only(wan_folders):
    _, _, folder = wan_folders("wan2.1-t2v")
    return OmniPipeline.from_pretrained(folder)


def run(pipe, task, **kwargs):
    size = pipe.pixels_per_token
    kwargs = dict(height=2 * size, width=3 * size, num_inference_steps=2, progress=False, **kwargs)
    return pipe("a ball", task, **kwargs)


def clip(pipe, frames=9):
    size = pipe.pixels_per_token
    return np.random.default_rng(0).integers(0, 256, (frames, 2 * size, 3 * size, 3), dtype=np.uint8)


def test_a_converted_wan_folder_is_video_only(video_only):
    assert not video_only.has_audio and not video_only.transformer.has_audio_expert
    assert video_only.audio_vae is None and video_only.vocoder is None


def test_every_video_task_runs_without_audio(video_only):
    key = clip(video_only)[0]
    outputs = {
        "t2v": run(video_only, "t2v", num_frames=9),
        "i2v": run(video_only, "i2v", image=key, num_frames=9),
        "keyframes": run(video_only, "t2v", key_frames=[(0.25, key)], num_frames=9),
        "extend": run(video_only, "extend", video=clip(video_only), video_fps=16, seconds=0.5),
        "retake": run(video_only, "retake", video=clip(video_only), video_fps=16, start=0.1, end=0.3),
    }
    for task, out in outputs.items():
        assert out.audio is None and out.sample_rate == 0, task
    assert outputs["t2v"].frames.shape == (1, 9, 32, 48, 3)
    assert outputs["extend"].frames.shape[1] == 9 + 8
    retake = outputs["retake"].frames[0]
    assert np.array_equal(retake[:1], clip(video_only)[:1]) and np.array_equal(
        retake[5:], clip(video_only)[5:]
    )
    image = run(video_only, "t2i").images
    assert image.shape == (1, 32, 48, 3) and image.dtype == np.uint8


def test_image_to_video_is_a_clean_first_frame_and_nothing_else(video_only):
    key = clip(video_only)[0]
    i2v = run(video_only, "i2v", image=key, num_frames=9, seed=3)
    key_frame = run(video_only, "t2v", key_frames=[(0.0, key)], num_frames=9, seed=3)
    assert np.array_equal(i2v.latents, key_frame.latents)


@pytest.mark.parametrize("task", ["t2a", "t2av", "a2v", "v2a"])
def test_sound_tasks_are_refused_by_name(video_only, task):
    extra = {"a2v": dict(audio=np.zeros(16000, np.float32), audio_sample_rate=16000)}
    extra["v2a"] = dict(video=clip(video_only), video_fps=16)
    with pytest.raises(ValueError, match=f"task '{task}' needs sound, and this model is video-only"):
        run(video_only, task, **extra.get(task, {}))


def test_audio_given_to_a_video_only_model_is_refused(video_only):
    with pytest.raises(ValueError, match="video-only .* it takes no audio"):
        run(
            video_only,
            "extend",
            video=clip(video_only),
            video_fps=16,
            audio=np.zeros(16000, np.float32),
            audio_sample_rate=16000,
        )
    with pytest.raises(ValueError, match="a retake can redo the video, not the audio"):
        run(video_only, "retake", video=clip(video_only), video_fps=16, start=0.1, end=0.3, modality="audio")


def test_transformer_and_vae_channels_must_agree(wan_folders, tmp_path):
    """A Wan 2.1 transformer beside a Wan 2.2-style VAE (48 latent channels): each whole, together wrong."""
    _, _, folder = wan_folders("wan2.1-t2v")
    _, _, other = wan_folders("wan2.2-ti2v")
    shutil.copytree(folder, tmp_path / "model", ignore=shutil.ignore_patterns("vae"))
    shutil.copytree(other / "vae", tmp_path / "model" / "vae")
    with pytest.raises(ValueError, match="transformer in_channels is 4 but vae z_dim is 48"):
        OmniPipeline.from_pretrained(tmp_path / "model")


def test_audio_expert_and_audio_vae_channels_must_agree(tmp_path):
    """An audio expert sized for another audio VAE (128 channels where the tiny one gives 4 x 8)."""
    pipe = build_pipeline("tiny", text_encoder=False)
    parts = {**pipe.components, "transformer": build_transformer(load_preset("tiny"), audio_in_channels=128)}
    OmniPipeline(**parts, **load_preset("tiny").pipeline).save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match=r"audio_in_channels is 128 but audio_vae latent_channels x .* is 32"
    ):
        OmniPipeline.from_pretrained(tmp_path)


def test_clean_frames_on_a_model_that_never_saw_them_are_warned_about(video_only, wan_folders, caplog):
    key = clip(video_only)[0]
    run(video_only, "i2v", image=key, num_frames=9)  # Wan 2.1: one noise level per sample in training
    assert "outside its training" in caplog.text
    caplog.clear()
    ti2v = OmniPipeline.from_pretrained(wan_folders("wan2.2-ti2v")[2])  # trained with a clean first frame
    run(ti2v, "i2v", image=np.zeros((32, 48, 3), np.uint8), num_frames=9)
    assert "outside its training" not in caplog.text
