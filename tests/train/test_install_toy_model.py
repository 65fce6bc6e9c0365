"""scripts/install_toy_model.py: a trained folder becomes the built-in model, small and half precision on disk."""

import pytest
import torch
from safetensors.torch import load_file

from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline
from tests.helpers import load_script


@pytest.fixture(scope="module")
def install():
    return load_script("install_toy_model").main


def test_installed_model_is_half_precision_on_disk_and_loads(install, tmp_path):
    trained = tmp_path / "export"
    build_pipeline("toy", seed=0).save_pretrained(trained)
    install(str(trained), str(tmp_path / "toy"))
    weights = tmp_path / "toy" / "transformer" / "diffusion_pytorch_model.safetensors"
    assert {t.dtype for t in load_file(weights).values()} == {torch.float16}
    pipe = OmniPipeline.from_pretrained(tmp_path / "toy")
    assert pipe.transformer.dtype == torch.float32
    assert (tmp_path / "toy" / "README.md").is_file()  # the model card travels with the weights


def test_a_folder_over_the_size_limit_is_refused_and_nothing_is_written(install, tmp_path, monkeypatch):
    trained = tmp_path / "export"
    build_pipeline("tiny", seed=0).save_pretrained(trained)
    script = load_script("install_toy_model")
    monkeypatch.setattr(script, "LIMIT_BYTES", 1000)
    with pytest.raises(SystemExit, match="over the 20 MB"):
        script.main(str(trained), str(tmp_path / "toy"))
    assert not (tmp_path / "toy").exists()
