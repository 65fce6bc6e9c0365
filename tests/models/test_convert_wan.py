"""The video expert is Wan: converted weights reproduce diffusers' WanTransformer3DModel exactly."""

import pytest
import torch
from diffusers import WanTransformer3DModel

from omni import LatentStream
from omni.models.convert_wan import convert_wan, convert_wan_state_dict
from tests.helpers import randomize

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
