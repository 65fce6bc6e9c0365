"""`omni codecs`: training a preset's codecs on the toy world, resuming finished stages, continuing a VAE."""

import json
import shutil
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline, load_preset
from omni.train.codecs import (
    Clips,
    CodecTraining,
    foreground_weights,
    stage_settings,
    toyworld_source,
    train_codecs,
    train_video_vae,
    transplant_video_vae,
)
from omni.train.partial import StageCheckpoint

FAST = CodecTraining(
    video_steps=2, video_batch=1, video_frames=5, audio_steps=2, audio_batch=2, vocoder_steps=2,
    vocoder_batch=2, eval_clips=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("codecs") / "tiny-codecs"
    report = train_codecs("tiny", out, FAST, source=toyworld_source(9))
    return out, report


def test_codecs_folder_loads_and_reports_reconstruction(trained):
    out, report = trained
    pipe = OmniPipeline.from_pretrained(out)
    written = json.loads((out / "codecs_report.json").read_text())
    for key in ("video_psnr_db", "audio_vae_mel_l1", "vocoder_mel_l1"):
        assert written[key] == report[key] and report[key] == report[key]  # present and not NaN
    assert set(written["training_seconds"]) == {"vae", "audio_vae", "vocoder"}
    # latents are normalised with the statistics measured on held-out clips
    assert pipe.vae.config.latents_std == pytest.approx(report["video_latent_std"])


def test_rerun_reuses_finished_stages(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained[0], out)  # the rerun rewrites the report, which other tests read
    before = (out / "stages" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    report = train_codecs("tiny", out, FAST, source=toyworld_source(9))
    assert report["training_seconds"] == {}  # nothing retrained
    assert (out / "stages" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == before


def test_a_stage_of_another_architecture_is_refused_not_reused(trained, tmp_path):
    """After the preset's vocoder changed, a rerun must not silently keep the old one."""
    import shutil

    out, _ = trained
    copy = tmp_path / "old"
    shutil.copytree(out / "stages", copy / "stages")
    config = copy / "stages" / "vocoder" / "config.json"
    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "hidden_channels": saved["hidden_channels"] * 2}))
    with pytest.raises(
        ValueError,
        match=r"stages/vocoder was trained with hidden_channels=.*remove the folder to train it again",
    ):
        train_codecs("tiny", copy, FAST, source=toyworld_source(9))
    with pytest.raises(
        ValueError, match=r"vocoder was trained with hidden_channels=.*start from another folder"
    ):
        train_codecs("tiny", tmp_path / "new", replace(FAST, vocoder_init=str(copy / "stages" / "vocoder")))


def test_video_vae_continues_from_a_given_folder(trained, tmp_path):
    out, _ = trained
    init = out / "stages" / "vae"
    cfg = replace(FAST, video_steps=0, video_init=str(init))
    second = tmp_path / "continued"
    (second / "stages").mkdir(parents=True)
    for stage in ("audio_vae", "vocoder"):  # reuse the other stages, train only the video VAE
        (second / "stages" / stage).symlink_to(out / "stages" / stage)
    train_codecs("tiny", second, cfg, source=toyworld_source(9))
    started, continued = AutoencoderKLWan.from_pretrained(init), OmniPipeline.from_pretrained(second).vae
    for name, value in started.state_dict().items():
        torch.testing.assert_close(continued.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_unknown_latent_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="video_latents must be 'mode' or 'sample', got 'mean'"):
        train_codecs("tiny", tmp_path / "x", CodecTraining(video_latents="mean"))


def test_foreground_pixels_weigh_more():
    x = -torch.ones(1, 3, 1, 8, 8)  # a black frame
    x[..., 2:4, 2:4] = 1.0  # with a white square
    weights = foreground_weights(x, 5.0)
    assert weights[..., 2:4, 2:4].eq(5).all() and weights.sum() == 64 - 4 + 4 * 5


def test_a_foreground_margin_weighs_both_sides_of_an_edge_the_same():
    from omni.train.codecs import foreground_share_weights

    x = -torch.ones(1, 3, 2, 16, 16)  # a black room
    x[..., 6:10, 6:10] = 1.0  # with a white square, rows and columns 6-9
    plain, wide = foreground_weights(x, 5.0), foreground_weights(x, 5.0, margin=2)
    # without a margin a pixel left as room where the object is costs 5x what the pixel beside it does
    assert plain[0, 0, 0, 6, 8] == 5 and plain[0, 0, 0, 5, 8] == 1
    # with one, the pixels on both sides of the edge weigh the same, out to `margin` pixels
    assert wide[..., 4:12, 4:12].eq(5).all() and wide.sum() == 2 * (256 - 64 + 64 * 5)
    share = foreground_share_weights(x, 0.5, margin=2)
    assert share[0, 0, 0, 4, 4] == share[0, 0, 0, 7, 7] > share[0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="foreground_margin must be >= 0 pixels, got -1"):
        CodecTraining(foreground_margin=-1)


def test_image_steps_train_on_single_frames(monkeypatch):
    from omni.train import codecs

    shapes, real = [], codecs._video_batch

    def recording(*args):
        batch = real(*args)
        shapes.append(tuple(batch.shape[:3]))
        return batch

    monkeypatch.setattr(codecs, "_video_batch", recording)
    vae = codecs.build_pipeline(codecs.load_preset("tiny"), seed=0).vae
    cfg = replace(FAST, video_steps=4, image_every=2)
    codecs.train_video_vae(vae, toyworld_source(33), cfg)
    clip, image = (1, 3, 5), (5, 3, 1)  # (batch, channels, frames): an image batch holds as many frames
    assert shapes == [clip, image, clip, image]


def test_decoder_only_training_keeps_the_latent_space():
    """A transformer trained on a VAE's latents stays valid when only the decoder is fine-tuned."""
    from omni.train import codecs

    vae = codecs.build_pipeline(codecs.load_preset("tiny"), seed=0).vae
    encoder = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith(("encoder.", "quant_conv."))}
    decoder = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith("decoder.")}
    codecs.train_video_vae(vae, toyworld_source(9), replace(FAST, video_steps=2, video_train="decoder"))
    after = vae.state_dict()
    for name, value in encoder.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(after[name], value) for name, value in decoder.items())


def test_unknown_video_train_part_is_refused():
    with pytest.raises(ValueError, match="video_train must be 'all' or 'decoder', got 'encoder'"):
        CodecTraining(video_train="encoder")


@pytest.mark.parametrize("loud", [0, 100, 199])  # first frame, middle, last frame
def test_focused_vocoder_segments_hold_the_loud_frame(loud):
    from omni.train.codecs import segment_starts

    spec = torch.full((64, 1, 200, 8), -30.0)  # quiet log-mel: drawn with odds of about 1e-11
    spec[:, :, loud] = 0.0  # one loud frame, as a beep in a toy clip
    starts = segment_starts(spec, 48, focus=1.0, generator=torch.Generator().manual_seed(0))
    assert all(0 <= s <= 200 - 48 and s <= loud < s + 48 for s in starts)
    if loud == 100:  # away from the clip's ends the loud frame lands anywhere in the segment
        assert len(set(starts)) > 8


def test_uniform_vocoder_segments_mostly_miss_a_single_loud_frame():
    from omni.train.codecs import segment_starts

    spec = torch.full((64, 1, 200, 8), -10.0)
    spec[:, :, 150] = 0.0
    starts = segment_starts(spec, 48, focus=0.0, generator=torch.Generator().manual_seed(0))
    assert sum(not (s <= 150 < s + 48) for s in starts) > 32  # about 44 of 64 expected


def test_segments_longer_than_the_clip_are_refused():
    from omni.train.codecs import segment_starts

    with pytest.raises(ValueError, match=r"vocoder_segment_frames \(48\) exceeds the 40 whole mel frames"):
        segment_starts(torch.zeros(2, 1, 40, 8), 48, focus=0.5, generator=torch.Generator())


def test_vocoder_focus_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="vocoder_focus must be in \\[0, 1\\], got 1.5"):
        CodecTraining(vocoder_focus=1.5)


def test_decoder_only_training_needs_a_trained_vae(tmp_path):
    with pytest.raises(ValueError, match="give video_init"):
        train_codecs("tiny", tmp_path / "x", replace(FAST, video_train="decoder"))


def test_vocoder_continues_from_a_given_folder(trained, tmp_path):
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    out, _ = trained
    init = out / "stages" / "vocoder"
    second = tmp_path / "continued"
    (second / "stages").mkdir(parents=True)
    for stage in ("vae", "audio_vae"):
        (second / "stages" / stage).symlink_to(out / "stages" / stage)
    train_codecs(
        "tiny", second, replace(FAST, vocoder_steps=0, vocoder_init=str(init)), source=toyworld_source(9)
    )
    started, continued = LTX2Vocoder.from_pretrained(init), OmniPipeline.from_pretrained(second).vocoder
    for name, value in started.state_dict().items():
        torch.testing.assert_close(continued.state_dict()[name], value, rtol=0, atol=0, msg=name)


def _wan(**changes) -> AutoencoderKLWan:
    config = dict(base_dim=8, z_dim=4, dim_mult=[1, 2, 2], num_res_blocks=1)
    return AutoencoderKLWan(**{**config, **changes})


def test_a_vae_of_another_temporal_compression_starts_from_a_trained_one(tmp_path):
    """A 2x-temporal VAE transplanted from a 4x one decodes what the 4x one learned spatially: every
    weight but the dropped temporal layers is copied, and it still takes 2x fewer frames per latent."""
    torch.manual_seed(0)
    four = _wan(temperal_downsample=[True, True])
    four.save_pretrained(tmp_path / "four")
    torch.manual_seed(1)
    two = _wan(temperal_downsample=[False, True], scale_factor_temporal=2)
    fresh = transplant_video_vae(two, tmp_path / "four")
    assert fresh == [] and len(two.state_dict()) < len(four.state_dict())  # the 4x one's extra time_convs
    for name, value in two.state_dict().items():
        torch.testing.assert_close(value, four.state_dict()[name], rtol=0, atol=0, msg=name)
    with torch.no_grad():
        latents = two.encode(torch.rand(1, 3, 9, 16, 16)).latent_dist.mode()
    assert latents.shape[2] == 5  # 1 + 8 / 2 latent frames, as declared

    torch.manual_seed(2)  # the other way round: the time_convs the 2x VAE lacks start fresh
    back = _wan(temperal_downsample=[True, True])
    two.save_pretrained(tmp_path / "two")
    fresh = transplant_video_vae(back, tmp_path / "two")
    assert fresh and all("time_conv" in name for name in fresh)


def test_a_transplant_refuses_any_other_difference(tmp_path):
    _wan(temperal_downsample=[True, True]).save_pretrained(tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"trained with base_dim=8 but .* asks for 16.*temperal_downsample"):
        transplant_video_vae(_wan(base_dim=16, temperal_downsample=[False, True]), tmp_path / "narrow")
    with pytest.raises(ValueError, match="video_init .* or video_transplant .* not both"):
        CodecTraining(video_init="a", video_transplant="b")
    with pytest.raises(FileNotFoundError, match="video_transplant: no VAE config.json in"):
        train_codecs("tiny", tmp_path / "out", replace(FAST, video_transplant=str(tmp_path / "missing")))


def test_omni_codecs_transplants_a_trained_vae_into_a_preset_of_another_temporal_compression(
    trained, tmp_path
):
    from omni.pipelines.presets import load_preset

    out, _ = trained
    tiny = load_preset("tiny")  # 4x temporal: [False, True, True]
    two = replace(
        tiny, vae={**tiny.vae, "temperal_downsample": [False, False, True], "scale_factor_temporal": 2}
    )
    second = tmp_path / "two"
    (second / "stages").mkdir(parents=True)
    for stage in ("audio_vae", "vocoder"):
        (second / "stages" / stage).symlink_to(out / "stages" / stage)
    cfg = replace(FAST, video_steps=0, video_transplant=str(out / "stages" / "vae"))
    train_codecs(two, second, cfg, source=toyworld_source(9))
    vae, trained_vae = (
        OmniPipeline.from_pretrained(second).vae,
        AutoencoderKLWan.from_pretrained(out / "stages" / "vae"),
    )
    assert vae.config.temperal_downsample == [False, False, True]
    for name, value in vae.state_dict().items():
        torch.testing.assert_close(value, trained_vae.state_dict()[name], rtol=0, atol=0, msg=name)


def test_the_edge_loss_prices_blurred_edges_and_not_flat_colour_errors():
    from omni.train.codecs import edge_loss

    x = -torch.ones(1, 3, 1, 16, 16)
    x[..., 4:10, 4:10] = 1.0  # a white square
    blurred = torch.nn.functional.avg_pool3d(
        x, (1, 3, 3), stride=1, padding=(0, 1, 1), count_include_pad=False
    )
    offset = x + (blurred - x).abs().mean()  # the same plain L1 error, spread evenly: every edge kept
    weights = foreground_weights(x, 5.0)
    assert (offset - x).abs().mean() == pytest.approx((blurred - x).abs().mean())
    assert edge_loss(x, x, weights) == 0 and edge_loss(offset, x, weights) < 1e-6
    assert edge_loss(blurred, x, weights) > 2 * (blurred - x).abs().mean()


def test_edge_weight_adds_to_the_video_vae_loss():
    from omni.train import codecs

    def losses(edge_weight: float) -> list[float]:
        vae = codecs.build_pipeline(codecs.load_preset("tiny"), seed=0).vae
        return codecs.train_video_vae(
            vae, toyworld_source(9), replace(FAST, video_steps=1, edge_weight=edge_weight)
        )

    plain, edged = losses(0.0), losses(1.0)
    assert edged[0] > plain[0] > 0  # same weights, same batch: the edge term is added on top


def test_omni_codecs_takes_preset_overrides_from_the_command_line(tmp_path):
    from omni.cli import main

    out = tmp_path / "two"
    steps = ["--video-steps", "1", "--video-frames", "5", "--video-batch", "1", "--audio-steps", "1"]
    steps += ["--audio-batch", "1", "--vocoder-steps", "1", "--vocoder-batch", "1", "--eval-clips", "1"]
    two_x = ["--set", "vae.temperal_downsample=[false,false,true]", "--set", "vae.scale_factor_temporal=2"]
    assert main(["codecs", "--preset", "tiny", *two_x, "--out", str(out), *steps]) == 0
    vae = OmniPipeline.from_pretrained(out).vae
    assert vae.config.temperal_downsample == [False, False, True] and vae.config.scale_factor_temporal == 2


def test_foreground_share_weighs_a_small_object_as_much_as_a_large_one():
    from omni.train.codecs import foreground_share_weights

    x = -torch.ones(1, 3, 3, 64, 64)  # three black frames: a small square, a large one, none
    x[:, :, 0, 10:22, 10:22] = 1.0
    x[:, :, 1, 10:30, 10:30] = 1.0
    weights = foreground_share_weights(x, 0.5)
    small, large = weights[0, 0, 0, 10:22, 10:22].sum(), weights[0, 0, 1, 10:30, 10:30].sum()
    assert small == pytest.approx(large) == pytest.approx(0.5 * 64 * 64)  # each holds half its frame's loss
    assert weights[0, 0, :2].mean((-2, -1)).tolist() == pytest.approx([1.0, 1.0])
    assert weights[0, 0, 2].eq(1).all()  # nothing in the frame: every pixel weighs 1
    with pytest.raises(ValueError, match=r"foreground_share must be in \(0, 1\), got 1.5"):
        foreground_share_weights(x, 1.5)


def test_adversarial_scale_matches_the_gradient_norms_at_the_last_layer():
    from omni.train.codecs import adversarial_scale

    weight = torch.ones(3, requires_grad=True)
    reconstruction, adversarial = (2.0 * weight).sum(), (0.5 * weight).sum()
    assert float(adversarial_scale(reconstruction, adversarial, weight)) == pytest.approx(4.0, rel=1e-3)


def test_adversarial_weight_judges_the_decoder_after_the_discriminator_warmed_up():
    from omni.train import codecs

    def first_loss(**adversarial) -> float:
        vae = codecs.build_pipeline(codecs.load_preset("tiny"), seed=0).vae
        return codecs.train_video_vae(vae, toyworld_source(9), replace(FAST, video_steps=1, **adversarial))[0]

    plain = first_loss()
    assert first_loss(adversarial_weight=0.5, adversarial_start=1) == pytest.approx(plain)  # warming up
    assert first_loss(adversarial_weight=0.5, adversarial_start=0) != pytest.approx(plain)


def test_frame_discriminator_scores_patches():
    from omni.train.codecs import FrameDiscriminator

    scores = FrameDiscriminator()(torch.zeros(2, 3, 64, 64))
    assert scores.shape == (2, 1, 8, 8)


def test_negative_adversarial_settings_are_refused():
    with pytest.raises(ValueError, match="adversarial_weight"):
        CodecTraining(adversarial_weight=-1.0)


@pytest.mark.slow
def test_a_codec_run_with_workers_learns_what_one_without_does():
    """Rendering ahead in other processes (what keeps a GPU busy) must not change the clips or their order."""
    source = toyworld_source(9)
    losses = []
    for workers in (0, 1):
        torch.manual_seed(0)
        vae = build_pipeline(load_preset("tiny"), seed=0).vae
        losses.append(train_video_vae(vae, source, replace(FAST, workers=workers)))
    assert len(losses[0]) == FAST.video_steps and losses[1] == pytest.approx(losses[0], rel=1e-5)


@pytest.mark.slow
def test_clips_rendered_ahead_are_not_counted_as_drawn_and_a_seek_drops_them():
    """A stage saved mid-run records the next clip it would draw, not the last one a worker rendered."""
    source = toyworld_source(9)
    with Clips(source, 100, workers=1) as clips:
        for _ in range(3):
            next(clips)
        assert clips.position == 103  # two more are rendered ahead by now
        clips.seek(101)
        video, audio = next(clips)
        np.testing.assert_array_equal(video, source(101)[0])
        np.testing.assert_array_equal(audio, source(101)[1])
        assert clips.position == 102


def test_bad_worker_count_and_missing_gpu_are_refused(tmp_path):
    with pytest.raises(ValueError, match="workers must be >= 0 processes, got -1"):
        CodecTraining(workers=-1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: no CUDA GPU is available"):
            train_codecs("tiny", tmp_path / "x", replace(FAST, device="cuda"))
        assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_codecs_train_on_a_gpu(tmp_path):
    report = train_codecs("tiny", tmp_path / "gpu", replace(FAST, device="cuda"), source=toyworld_source(9))
    assert report["video_psnr_db"] == report["video_psnr_db"]  # not NaN
    OmniPipeline.from_pretrained(tmp_path / "gpu")


class StopsAt:
    """A toy-world source (33 frames: every seed is a measurable scene) that fails at one seed, as a run
    killed midway would stop."""

    def __init__(self, seed: int) -> None:
        self.seed, self.source = seed, toyworld_source(33)

    def __call__(self, seed: int):
        if seed == self.seed:
            raise RuntimeError("stopped")
        return self.source(seed)


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant",
    [
        {"video_latents": "sample"},
        {"video_train": "decoder", "image_every": 2},  # a frozen encoder; single-frame steps
        {"adversarial_weight": 0.5, "adversarial_start": 1},  # a discriminator and its optimizer too
    ],
    ids=["sampled-latents", "decoder-only", "adversarial"],
)
def test_a_stopped_video_vae_stage_goes_on_where_it_stopped(tmp_path, variant):
    """Killed after two of four steps, the rerun draws the clips and noise the whole run would have: it
    ends with the same weights and losses, the partial steps' losses included."""
    cfg = replace(FAST, video_steps=4, checkpoint_minutes=1e-9, **variant)
    path = tmp_path / "vae.partial.safetensors"

    def vae():
        return build_pipeline(load_preset("tiny"), seed=0).vae

    whole = vae()
    whole_losses = train_video_vae(whole, toyworld_source(33), cfg)
    stopped = vae()
    with pytest.raises(RuntimeError, match="stopped"):  # the third step's clip never comes
        train_video_vae(stopped, StopsAt(2), cfg, StageCheckpoint(path, asdict(cfg), 1e-9))
    assert path.is_file()
    resumed = vae()  # a new process: fresh weights, the partial file the only memory
    checkpoint = StageCheckpoint(path, asdict(cfg), 1e-9)
    losses = train_video_vae(resumed, toyworld_source(33), cfg, checkpoint)
    assert losses == pytest.approx(whole_losses, rel=1e-5)
    assert checkpoint.seconds > checkpoint.earlier_seconds > 0  # the stage's time counts both sittings
    for (key, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=key)


@pytest.mark.slow
def test_omni_codecs_goes_on_with_a_stopped_vocoder_and_cleans_up(tmp_path):
    cfg = replace(FAST, vocoder_steps=4, checkpoint_minutes=1e-9)
    train_codecs("tiny", tmp_path / "whole", cfg, source=toyworld_source(33))
    vocoder_clips = 2_000_000 + 2 * cfg.vocoder_batch  # the third vocoder step's first clip
    with pytest.raises(RuntimeError, match="stopped"):
        train_codecs("tiny", tmp_path / "run", cfg, source=StopsAt(vocoder_clips))
    partial = tmp_path / "run" / "stages" / "vocoder.partial.safetensors"
    assert partial.is_file() and not (tmp_path / "run" / "stages" / "vocoder").exists()
    train_codecs("tiny", tmp_path / "run", cfg, source=toyworld_source(33))
    assert not partial.exists()  # the stage is saved; its partial state is gone
    losses = [
        json.loads((tmp_path / r / "stages" / "vocoder" / "losses.json").read_text())
        for r in ("whole", "run")
    ]
    assert len(losses[1]) == 4 and losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_a_partial_stage_of_other_settings_is_refused(tmp_path):
    cfg = replace(FAST, video_steps=4, checkpoint_minutes=1e-9)
    path = tmp_path / "vae.partial.safetensors"
    with pytest.raises(RuntimeError, match="stopped"):
        train_video_vae(
            build_pipeline(load_preset("tiny"), seed=0).vae,
            StopsAt(2),
            cfg,
            StageCheckpoint(path, asdict(cfg), 1e-9),
        )
    other = replace(cfg, video_lr=5e-4, eval_clips=3)  # eval_clips changes no weight: not named
    with pytest.raises(
        ValueError, match=r"holds 2 steps of a run with other settings \(video_lr: 0.001 -> 0.0005\)"
    ):
        train_video_vae(
            build_pipeline(load_preset("tiny"), seed=0).vae,
            toyworld_source(33),
            other,
            StageCheckpoint(path, asdict(other), 1e-9),
        )
    with pytest.raises(ValueError, match="checkpoint_minutes must be >= 0"):
        CodecTraining(checkpoint_minutes=-1)


def test_a_partial_stage_of_another_architecture_is_refused_naming_what_differs(tmp_path):
    cfg = replace(FAST, video_steps=4, checkpoint_minutes=1e-9)
    path = tmp_path / "vae.partial.safetensors"
    small = build_pipeline(load_preset("tiny"), seed=0)
    with pytest.raises(RuntimeError, match="stopped"):
        settings = stage_settings(cfg, small.vae, small.mel_config)
        train_video_vae(small.vae, StopsAt(2), cfg, StageCheckpoint(path, settings, 1e-9))
    wide = build_pipeline(load_preset("tiny", {"vae.base_dim": 2 * small.vae.config.base_dim}), seed=0)
    with pytest.raises(ValueError, match=r"other settings \(AutoencoderKLWan.base_dim: "):
        settings = stage_settings(cfg, wide.vae, wide.mel_config)
        train_video_vae(wide.vae, toyworld_source(33), cfg, StageCheckpoint(path, settings, 1e-9))


@pytest.mark.parametrize("content", [b"", b"not a safetensors file", b"\x08" + bytes(7) + b"{}"])
def test_an_unreadable_partial_stage_is_refused_with_the_remedy(tmp_path, content):
    path = tmp_path / "vae.partial.safetensors"
    path.write_bytes(content)  # e.g. a disk that filled up under an older version
    vae = build_pipeline(load_preset("tiny"), seed=0).vae
    with pytest.raises(ValueError, match="not a readable partial stage .*remove the file"):
        train_video_vae(vae, toyworld_source(33), FAST, StageCheckpoint(path, asdict(FAST), 1))
    assert path.read_bytes() == content  # left for the user to look at or remove


def test_a_finished_stage_drops_a_partial_state_left_beside_it(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained[0], out)
    stale = out / "stages" / "vocoder.partial.safetensors"
    stale.write_bytes(b"left by a run stopped after saving the stage")
    train_codecs("tiny", out, FAST, source=toyworld_source(9))
    assert not stale.exists()


def test_a_folder_that_does_not_load_gets_no_report(tmp_path, monkeypatch):
    """The report is what marks a run finished (the recipe skips such runs): it is written last."""

    def broken(*_, **__):
        raise OSError("disk full")

    monkeypatch.setattr(OmniPipeline, "from_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        train_codecs("tiny", tmp_path / "run", FAST, source=toyworld_source(9))
    assert not (tmp_path / "run" / "codecs_report.json").exists()


def test_zero_steps_keep_initial_weights_and_no_eval_clips_is_refused(tmp_path):
    """Zero steps give a loadable folder of untrained codecs (what an image-only pixel-proxy run needs for
    its text encoder and shards); zero held-out clips would leave the latent normalisation undefined."""
    with pytest.raises(ValueError, match="eval_clips must be >= 1, got 0"):
        CodecTraining(eval_clips=0)
    with pytest.raises(ValueError, match="vocoder_steps must be >= 0"):
        CodecTraining(vocoder_steps=-1)
    untrained = replace(FAST, video_steps=0, audio_steps=0, vocoder_steps=0)
    report = train_codecs("tiny", tmp_path / "untrained", untrained, source=toyworld_source(9))
    pipe = OmniPipeline.from_pretrained(tmp_path / "untrained")
    assert report["clips"] == 1 and np.isfinite(report["video_psnr_db"])
    assert pipe.vae.config.latents_std == report["video_latent_std"]
    initial = build_pipeline(load_preset("tiny"), seed=untrained.seed)
    for part in ("vae", "audio_vae", "vocoder"):
        saved, built = getattr(pipe, part).state_dict(), getattr(initial, part).state_dict()
        assert saved.keys() == built.keys()
        assert all(torch.equal(saved[k], built[k]) for k in saved), part
