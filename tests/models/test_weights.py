"""Weights load from safetensors only, and a bad file is named precisely before anything loads."""

import json

import pytest
import torch
from safetensors.torch import save_file

from omni.models.weights import (
    UnsafeWeightsError,
    WeightsError,
    check_safetensors_only,
    read_safetensors_header,
)
from omni.pipelines.pipeline_omni import OmniPipeline


@pytest.fixture
def saved(tiny_pipeline, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    return tmp_path


def test_truncated_weights_are_named(saved):
    weights = saved / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match="vae/diffusion_pytorch_model.safetensors: truncated"):
        OmniPipeline.from_pretrained(saved)


def test_mismatched_shapes_name_the_tensor_and_both_shapes(saved):
    config = json.loads((saved / "transformer" / "config.json").read_text())
    config["ffn_dim"] = 48
    (saved / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        WeightsError,
        match=r"'blocks\.0\.experts\.video\.ffn\.net\.0\.proj\.weight' has shape \(64, 32\) but the model's config expects \(48, 32\)",
    ):
        OmniPipeline.from_pretrained(saved)


def test_missing_tensors_are_named(saved, tmp_path):
    path = saved / "vocoder" / "diffusion_pytorch_model.safetensors"
    save_file({"unrelated": torch.zeros(1)}, str(path))
    with pytest.raises(WeightsError, match="lack tensor"):
        OmniPipeline.from_pretrained(saved)


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "weights.ckpt", "state.pkl"])
def test_pickle_files_are_refused_with_a_way_out(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04N.")
    with pytest.raises(UnsafeWeightsError, match="safetensors.torch.save_file"):
        check_safetensors_only(tmp_path)


@pytest.mark.parametrize(
    "payload", [b"", b"1234", b"\xff" * 8 + b"{}", b"\x02\x00\x00\x00\x00\x00\x00\x00{]"]
)
def test_garbage_is_not_a_safetensors_file(tmp_path, payload):
    path = tmp_path / "x.safetensors"
    path.write_bytes(payload)
    with pytest.raises(WeightsError):
        read_safetensors_header(path)


def test_uppercase_pickle_suffixes_are_refused_too(tmp_path):
    (tmp_path / "PYTORCH_MODEL.BIN").write_bytes(b"\x80\x04N.")
    with pytest.raises(UnsafeWeightsError, match="PYTORCH_MODEL.BIN"):
        check_safetensors_only(tmp_path)


def test_a_deeply_nested_header_is_a_weights_error(tmp_path):
    header = b"[" * 200_000
    path = tmp_path / "x.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(WeightsError, match="nested too deeply"):
        read_safetensors_header(path)


def test_integer_weights_are_refused_not_cast(saved):
    from safetensors.torch import load_file

    path = saved / "transformer" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].to(torch.int8)
    save_file(tensors, str(path))
    with pytest.raises(WeightsError, match=f"tensor '{name}' is I8; model weights must be one of"):
        OmniPipeline.from_pretrained(saved)


def test_non_finite_weights_are_refused_when_loading(saved):
    from safetensors.torch import load_file

    path = saved / "transformer" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    name = next(n for n, t in sorted(tensors.items()) if t.numel() > 1)
    tensors[name][0] = float("nan")
    save_file(tensors, str(path))
    with pytest.raises(WeightsError, match=f"parameter '{name}' holds 1 NaN or infinite value"):
        OmniPipeline.from_pretrained(saved)
