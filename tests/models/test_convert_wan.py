"""The video expert is Wan: converted weights reproduce diffusers' WanTransformer3DModel exactly."""

import json
import shutil

import pytest
import torch
from diffusers import WanTransformer3DModel
from safetensors.torch import load_file, save_file

from omni import LatentStream
from omni.cli import main
from omni.models.convert_wan import (
    convert_wan,
    convert_wan_pipeline,
    convert_wan_state_dict,
    convert_wan_transformer,
    omni_config_from_wan,
)
from omni.models.transformer import OmniTransformer
from tests.helpers import TINY_TRANSFORMER, WAN_LAYOUTS, randomize

WAN = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=4,
    out_channels=4,
    text_dim=16,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
    rope_max_seq_len=64,
)


@pytest.fixture(scope="module")
def wan_and_omni(tmp_path_factory):
    torch.manual_seed(0)
    wan = randomize(WanTransformer3DModel(**WAN)).eval()
    folder = tmp_path_factory.mktemp("wan")
    wan.save_pretrained(folder)
    return wan, convert_wan(folder, audio_in_channels=8).eval()


def _inputs():
    generator = torch.Generator().manual_seed(1)
    video = torch.randn(2, 4, 3, 8, 12, generator=generator)  # 3 latent frames, 4x6 tokens each
    text = torch.randn(2, 7, 16, generator=generator)
    return video, text


def test_video_only_output_equals_wan(wan_and_omni):
    wan, omni = wan_and_omni
    video, text = _inputs()
    t = torch.tensor([700.0, 120.0])
    with torch.no_grad():
        expected = wan(video, t, text).sample
        got = omni([LatentStream("video", video, t)], text)[0]
    assert (expected - got).abs().max() <= 1e-5


def test_per_token_timesteps_match_wan_2_2(wan_and_omni):
    """Wan 2.2 TI2V passes one timestep per token (first frame clean); omni takes them per frame or token."""
    wan, omni = wan_and_omni
    video, text = _inputs()
    per_frame = torch.tensor([[0.0, 640.0, 640.0], [0.0, 90.0, 90.0]])
    per_token = per_frame[:, :, None, None].expand(2, 3, 4, 6)
    random_tokens = torch.rand(2, 3, 4, 6, generator=torch.Generator().manual_seed(2)) * 1000
    with torch.no_grad():
        for ours in (per_frame, per_token, random_tokens):
            wan_t = (per_token if ours is not random_tokens else random_tokens).reshape(2, -1)
            expected = wan(video, wan_t, text).sample
            got = omni([LatentStream("video", video, ours)], text)[0]
            assert (expected - got).abs().max() <= 1e-5


def test_conversion_leaves_audio_expert_fresh(wan_and_omni):
    _, omni = wan_and_omni
    assert torch.count_nonzero(omni.blocks[0].experts["audio"].scale_shift_table) == 0
    assert torch.count_nonzero(omni.experts["audio"].proj_out.weight) == 0


def test_wan_i2v_checkpoints_are_refused(tmp_path):
    wan = WanTransformer3DModel(**WAN, image_dim=8, added_kv_proj_dim=16)
    wan.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="image_dim"):
        convert_wan(tmp_path)


def test_unknown_wan_keys_are_named():
    with pytest.raises(ValueError, match="no_such_layer"):
        convert_wan_state_dict({"no_such_layer.weight": torch.zeros(1)})


def test_pickle_checkpoints_are_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"_class_name": "WanTransformer3DModel"}')
    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        convert_wan(tmp_path)


@pytest.mark.parametrize("layout", WAN_LAYOUTS)
def test_convert_writes_a_complete_pipeline_folder_with_wan_conventions(wan_folders, layout):
    _, _, folder = wan_folders(layout)
    index = json.loads((folder / "model_index.json").read_text())
    parts = ["transformer", "vae", "text_encoder", "tokenizer", "scheduler"]
    parts += ["transformer_2"] if layout == "wan2.2-a14b" else []
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(parts)
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    assert index["_class_name"] == "OmniPipeline" and index["audio_vae"] == [None, None]
    assert index["max_text_tokens"] == 512 and index["prompt_cleaning"] == "wan"
    transformer = json.loads((folder / "transformer" / "config.json").read_text())
    assert transformer["mask_text_padding"] is False and transformer["audio_in_channels"] == 0
    assert transformer["per_token_timesteps"] is (layout == "wan2.2-ti2v")
    fps = 24.0 if layout == "wan2.2-ti2v" else 16.0  # TI2V-5B's Wan 2.2 VAE has 48 channels: a 24 fps model
    assert index["default_fps"] == fps and transformer["rope_time_scale"] == fps / 4  # latent frame i at i
    assert index["boundary_ratio"] == (0.875 if layout == "wan2.2-a14b" else None)


def test_sharded_wan_weights_convert_shard_by_shard(tmp_path):
    torch.manual_seed(0)
    wan = randomize(WanTransformer3DModel(**WAN)).eval()
    wan.save_pretrained(tmp_path / "wan", max_shard_size="20KB")
    assert len(list((tmp_path / "wan").glob("*.safetensors"))) > 1
    convert_wan_transformer(tmp_path / "wan", tmp_path / "omni")
    assert sorted(p.name for p in (tmp_path / "omni").glob("*.safetensors")) == sorted(
        p.name for p in (tmp_path / "wan").glob("*.safetensors")
    )
    omni = OmniTransformer.from_pretrained(tmp_path / "omni").eval()
    video, text = _inputs()
    t = torch.tensor([700.0, 120.0])
    with torch.no_grad():
        assert (
            wan(video, t, text).sample - omni([LatentStream("video", video, t)], text)[0]
        ).abs().max() <= 1e-5


def _wan_index(folder, **entries):
    index = {
        "_class_name": "WanPipeline",
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"],
        "scheduler": ["diffusers", "UniPCMultistepScheduler"],
        **entries,
    }
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_wan_21_image_to_video_is_refused_with_what_to_use(tmp_path):
    folder = _wan_index(
        tmp_path / "i2v",
        _class_name="WanImageToVideoPipeline",
        image_encoder=["transformers", "CLIPVisionModel"],
        image_processor=["transformers", "CLIPImageProcessor"],
    )
    with pytest.raises(ValueError, match="CLIP image_encoder .* Convert Wan 2.1 T2V .* Wan 2.2 TI2V-5B"):
        convert_wan_pipeline(folder, tmp_path / "out")


def test_channel_concat_image_to_video_is_refused_with_what_to_use(tmp_path):
    folder = _wan_index(tmp_path / "i2v", _class_name="WanImageToVideoPipeline", boundary_ratio=0.9)
    with pytest.raises(ValueError, match="extra input channels, which omni cannot run. Convert Wan 2.1 T2V"):
        convert_wan_pipeline(folder, tmp_path / "out")
    wan = WanTransformer3DModel(**{**WAN, "in_channels": 9})  # 4 noise + 1 mask + 4 image channels
    with pytest.raises(ValueError, match="in_channels=9 but out_channels=4"):
        omni_config_from_wan(dict(wan.config))


def test_a14b_needs_both_experts_and_the_boundary(tmp_path):
    folder = _wan_index(tmp_path / "a14b", boundary_ratio=0.875)
    with pytest.raises(ValueError, match="boundary_ratio is 0.875 with \\['transformer'\\]"):
        convert_wan_pipeline(folder, tmp_path / "out")


def test_missing_parts_are_named(tmp_path):
    folder = _wan_index(tmp_path / "wan", text_encoder=[None, None])
    with pytest.raises(ValueError, match="lacks \\['text_encoder'\\]"):
        convert_wan_pipeline(folder, tmp_path / "out")


def test_cli_refuses_a_bare_transformer_folder(tmp_path, capsys):
    WanTransformer3DModel(**WAN).save_pretrained(tmp_path / "transformer")
    assert main(["convert", "--from", "wan", str(tmp_path / "transformer"), str(tmp_path / "out")]) == 2
    assert "give the whole Wan pipeline folder" in capsys.readouterr().err


def test_video_only_transformer_has_no_audio_weights_and_refuses_audio():
    model = OmniTransformer(**{**TINY_TRANSFORMER, "audio_in_channels": 0})
    assert not model.has_audio_expert and not any("audio" in name for name in model.state_dict())
    audio = LatentStream("audio", torch.zeros(1, 4, 3, 2), torch.zeros(1))
    with pytest.raises(ValueError, match="no audio expert"):
        model([audio], torch.zeros(1, 2, 16))


def test_a_failed_conversion_leaves_no_folder(wan_folders, tmp_path):
    _, wan_folder, _ = wan_folders("wan2.1-t2v")
    shutil.copytree(wan_folder, tmp_path / "wan")
    weights = next((tmp_path / "wan" / "transformer").glob("*.safetensors"))
    state = load_file(str(weights))
    state["blocks.0.ffn.net.2.weight"] = state["blocks.0.ffn.net.2.weight"][:, :7].contiguous()
    save_file(state, str(weights))
    with pytest.raises(ValueError, match="blocks.0.experts.video.ffn.net.2.weight: Wan shape"):
        convert_wan_pipeline(tmp_path / "wan", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wan"]


def test_a_wan_folder_whose_json_does_not_parse_is_named(tmp_path, capsys):
    from omni.cli import main

    (tmp_path / "wan").mkdir()
    (tmp_path / "wan" / "model_index.json").write_text("")
    assert main(["convert", "--from", "wan", str(tmp_path / "wan"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'wan' / 'model_index.json'}: the Wan pipeline index is not valid JSON" in err
