"""`omni bench train`'s synthetic latents have the shapes the preset's codecs produce."""

import pytest
import torch

from omni.config import ConfigError
from omni.pipelines.presets import build_pipeline, load_preset
from omni.train.bench import synthetic_batch


@pytest.mark.parametrize("preset", ["tiny", "toy"])
def test_synthetic_video_latents_match_the_vae(preset):
    cfg = load_preset(preset)
    batch = synthetic_batch(cfg, 1, 33, 64, 64, 0.0, torch.device("cpu"))
    with torch.no_grad():
        encoded = build_pipeline(cfg, seed=0).vae.encode(torch.zeros(1, 3, 33, 64, 64)).latent_dist.mode()
    assert batch.video.shape == encoded.shape


def test_a_vae_must_declare_the_compression_its_layers_do():
    """scale_factor_temporal sizes every latent the pipeline makes: left at Wan's 4 for a 2x-temporal VAE,
    a 2 s request came back as 1 s of video."""
    two_x = {"vae.temperal_downsample": [False, False, True]}
    with pytest.raises(ConfigError, match="set scale_factor_temporal: 2 and scale_factor_spatial: 8"):
        load_preset("tiny", two_x)
    cfg = load_preset("tiny", {**two_x, "vae.scale_factor_temporal": 2})
    pipe = build_pipeline(cfg, seed=0)
    out = pipe("a red ball", seconds=1.0, num_inference_steps=1, seed=0)
    assert out.frames[0].shape[0] == 16  # 1 s at 16 fps (9 latent frames decode to 17)
    batch = synthetic_batch(cfg, 1, 17, 64, 64, 0.0, torch.device("cpu"))
    assert batch.video.shape[2] == 9


def test_preset_overrides_are_checked_like_the_file():
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) \[.temporal_downsample.\].*.temperal_downsample."
    ):
        load_preset("tiny", {"vae.temporal_downsample": [True, True, True]})
    with pytest.raises(ConfigError, match="cannot set 'text_encoder.name': 'text_encoder' holds"):
        load_preset("tiny", {"text_encoder.name": "x"})
    assert load_preset("tiny", {"pipeline.default_steps": 3}).pipeline["default_steps"] == 3


def test_bench_train_times_a_variant_given_by_set(capsys):
    """`omni bench train --set transformer.patch_size=[1,4,4]` builds the variant: 4x the video tokens of the
    preset's 8x8 patches; a misspelt key is refused naming it."""
    from omni.cli import main

    def tokens(*extra):
        assert main(["bench", "train", "--preset", "toy", "--batch-size", "1", "--frames", "1", "--steps", "1",
              "--audio-seconds", "0", "--device", "cpu", *extra]) == 0  # fmt: skip
        out = capsys.readouterr().out
        return out, int(out.split(" tokens/step")[0].rsplit(" ", 1)[1])

    _, base = tokens()
    out, finer = tokens("--set", "transformer.patch_size=[1,4,4]")
    assert finer == 4 * base
    assert "transformer.patch_size=[1, 4, 4]" in out
    assert main(["bench", "train", "--set", "transformer.patch_sz=[1,4,4]"]) == 2
    assert "unknown key(s) ['patch_sz']" in capsys.readouterr().err


def test_mfu_never_exceeds_one_even_when_the_peak_was_measured_low():
    from omni.train.metrics import PeakFlops

    peak = PeakFlops(1e9, "a matmul on a busy machine")
    assert peak.mfu(0.5e9) == 0.5
    assert peak.mfu(2.5e9) == 1.0  # a step faster than the measured peak raises it
    assert peak.flops == 2.5e9 and "raised" in peak.source
    assert peak.mfu(0.5e9) == 0.2


def test_the_cpu_peak_is_measured_at_the_runs_thread_count_and_dtype(monkeypatch):
    import torch

    from omni.train.metrics import peak_flops

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = peak_flops(torch.device("cpu"), torch.float32)
        assert "float32 matmul on this CPU at 1 thread" in one.source
        torch.set_num_threads(2)
        two = peak_flops(torch.device("cpu"), torch.bfloat16)
        assert "bfloat16 matmul on this CPU at 2 threads" in two.source
    finally:
        torch.set_num_threads(threads)
    assert one.flops > 1e8 and two.flops > 1e6


def test_bench_train_prints_mfu_within_100_percent_and_a_readable_peak(capsys, monkeypatch):
    from omni.cli import main

    monkeypatch.setenv("OMNI_PEAK_TFLOPS", "1e-6")  # far below any real step's rate
    args = ["--batch-size", "1", "--frames", "1", "--steps", "2", "--audio-seconds", "0", "--device", "cpu"]
    assert main(["bench", "train", "--preset", "tiny", *args]) == 0
    out = capsys.readouterr().out
    mfu = float(out.split("MFU ")[1].split("%")[0])
    assert 0 < mfu <= 100
    peak = float(out.split("% of ")[1].split(" TFLOP/s")[0])
    assert peak > 1e-6  # raised to the fastest step, printed with its significant digits


def test_gpu_peaks_tell_the_h100_parts_apart():
    from omni.train.metrics import gpu_peak_bf16

    assert gpu_peak_bf16("NVIDIA H100 80GB HBM3") == 989.4e12
    assert gpu_peak_bf16("NVIDIA H100 PCIe") == 756.0e12
    assert gpu_peak_bf16("NVIDIA H200") == 989.4e12
    assert gpu_peak_bf16("NVIDIA T4") is None
