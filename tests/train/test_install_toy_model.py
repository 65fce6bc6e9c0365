"""scripts/install_toy_model.py: a trained folder becomes the built-in model, optionally with new codecs."""

import pytest
import torch

from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline
from tests.helpers import load_script


@pytest.fixture(scope="module")
def install():
    return load_script("install_toy_model").main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "export"
    build_pipeline("tiny", seed=0).save_pretrained(folder)
    return folder


def test_installed_model_is_half_precision_on_disk_and_loads(install, trained, tmp_path):
    install(str(trained), str(tmp_path / "toy"))
    weights = tmp_path / "toy" / "transformer" / "diffusion_pytorch_model.safetensors"
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(weights).values()} == {torch.float16}
    pipe = OmniPipeline.from_pretrained(tmp_path / "toy")
    assert pipe.transformer.dtype == torch.float32


@pytest.mark.slow
def test_codecs_with_the_same_encoders_replace_decoders_and_vocoder(install, trained, tmp_path):
    codecs = OmniPipeline.from_pretrained(trained)
    with torch.no_grad():
        codecs.vae.decoder.conv_out.weight.add_(1.0)  # a fine-tuned decoder
        next(codecs.vocoder.parameters()).add_(1.0)  # a retrained vocoder
    codecs.save_pretrained(tmp_path / "codecs")
    install(str(trained), str(tmp_path / "toy"), str(tmp_path / "codecs"))
    installed = OmniPipeline.from_pretrained(tmp_path / "toy")
    for name in ("vae", "audio_vae", "vocoder"):
        for key, value in getattr(codecs, name).state_dict().items():
            torch.testing.assert_close(
                getattr(installed, name).state_dict()[key], value.half().float(), msg=key
            )


def test_codecs_with_another_encoder_are_refused(install, trained, tmp_path):
    codecs = OmniPipeline.from_pretrained(trained)
    with torch.no_grad():
        codecs.vae.encoder.conv_in.weight.add_(1.0)
    codecs.save_pretrained(tmp_path / "codecs")
    with pytest.raises(SystemExit, match="its vae encodes differently"):
        install(str(trained), str(tmp_path / "toy"), str(tmp_path / "codecs"))
    assert not (tmp_path / "toy").exists()  # nothing written


@pytest.mark.slow
def test_latents_keep_the_source_normalisation(install, trained, tmp_path):
    codecs = OmniPipeline.from_pretrained(trained)
    std = list(codecs.vae.config.latents_std)
    codecs.vae.register_to_config(latents_std=[s * 1.1 for s in std])  # re-measured on other clips
    codecs.save_pretrained(tmp_path / "codecs")
    install(str(trained), str(tmp_path / "toy"), str(tmp_path / "codecs"))
    assert OmniPipeline.from_pretrained(tmp_path / "toy").vae.config.latents_std == pytest.approx(std)


def test_codecs_with_another_architecture_are_refused(install, trained, tmp_path):
    from omni.pipelines.presets import load_preset

    codecs = build_pipeline(load_preset("toy"), seed=0)  # other VAE shapes
    codecs.save_pretrained(tmp_path / "codecs")
    with pytest.raises(SystemExit, match="differ"):
        install(str(trained), str(tmp_path / "toy"), str(tmp_path / "codecs"))
