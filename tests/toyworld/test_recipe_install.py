"""omni.toyworld.recipe.install_model: a trained folder becomes the built-in model, small and half precision."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from omni.pipelines.pipeline_omni import OmniPipeline
from omni.pipelines.presets import build_pipeline
from omni.toyworld import recipe

CARD = Path(__file__).resolve().parents[2] / "docs" / "toy-model.md"


def test_installed_model_is_half_precision_on_disk_and_loads(tmp_path):
    trained = tmp_path / "export"
    build_pipeline("toy", seed=0).save_pretrained(trained)
    recipe.install_model(trained, tmp_path / "toy", CARD)
    weights = tmp_path / "toy" / "transformer" / "diffusion_pytorch_model.safetensors"
    assert {t.dtype for t in load_file(weights).values()} == {torch.float16}
    pipe = OmniPipeline.from_pretrained(tmp_path / "toy")
    assert pipe.transformer.dtype == torch.float32
    assert (
        tmp_path / "toy" / "README.md"
    ).read_text() == CARD.read_text()  # the card travels with the weights


def test_a_folder_over_the_size_limit_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    trained = tmp_path / "export"
    build_pipeline("tiny", seed=0).save_pretrained(trained)
    monkeypatch.setattr(recipe, "LIMIT_BYTES", 1000)
    with pytest.raises(ValueError, match="the model folder would be .* the repository allows"):
        recipe.install_model(trained, tmp_path / "toy")
    assert not (tmp_path / "toy").exists()
