"""Initialise omni's video expert from a diffusers `WanTransformer3DModel` checkpoint (Wan 2.1 / 2.2).

The video expert keeps Wan's block layout, so conversion is a renaming of keys (a state-dict adapter):

    patch_embedding.*                    -> experts.video.patch_embedding.*
    condition_embedder.time_embedder.*   -> experts.video.time_embedder.*
    condition_embedder.time_proj.*       -> experts.video.time_proj.*
    condition_embedder.text_embedder.*   -> text_embedder.*
    blocks.N.*                           -> blocks.N.experts.video.*
    proj_out.*, scale_shift_table        -> experts.video.proj_out.*, experts.video.scale_shift_table

The audio expert and the image modality embedding keep their fresh (adaLN-zero) initialisation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from omni.models.transformer import OmniTransformer

# Wan config keys that carry over unchanged, and those that must be absent for a text-to-video backbone.
_SHARED_KEYS = (
    "patch_size",
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "out_channels",
    "text_dim",
    "freq_dim",
    "ffn_dim",
    "num_layers",
    "cross_attn_norm",
    "qk_norm",
    "eps",
)
_UNSUPPORTED_KEYS = ("image_dim", "added_kv_proj_dim", "pos_embed_seq_len")

_RENAMES = (
    (r"^patch_embedding\.", "experts.video.patch_embedding."),
    (r"^condition_embedder\.time_embedder\.", "experts.video.time_embedder."),
    (r"^condition_embedder\.time_proj\.", "experts.video.time_proj."),
    (r"^condition_embedder\.text_embedder\.", "text_embedder."),
    (r"^blocks\.(\d+)\.", r"blocks.\1.experts.video."),
    (r"^proj_out\.", "experts.video.proj_out."),
    (r"^scale_shift_table$", "experts.video.scale_shift_table"),
)


def omni_config_from_wan(wan_config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """OmniTransformer kwargs whose video expert has the Wan model's exact shapes."""
    for key in _UNSUPPORTED_KEYS:
        if wan_config.get(key) is not None:
            raise ValueError(
                f"Wan config sets {key}={wan_config[key]!r} (image cross-attention of Wan 2.1 I2V); omni "
                "converts text-to-video backbones (Wan 2.1 T2V, Wan 2.2 T2V / TI2V): images enter omni as clean tokens"
            )
    config = {key: wan_config[key] for key in _SHARED_KEYS if key in wan_config}
    config["patch_size"] = tuple(config.get("patch_size", (1, 2, 2)))
    config.update(overrides)
    return config


def convert_wan_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a `WanTransformer3DModel` state dict to omni's video-expert keys."""
    converted = {}
    for key, value in state_dict.items():
        for pattern, replacement in _RENAMES:
            new_key, hits = re.subn(pattern, replacement, key)
            if hits:
                converted[new_key] = value
                break
        else:
            raise ValueError(f"Wan weight {key!r} has no counterpart in omni's video expert")
    return converted


def load_wan_checkpoint(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read config.json and the safetensors weights of a Wan transformer folder (or a pipeline folder)."""
    folder = Path(folder)
    if (folder / "transformer" / "config.json").is_file():
        folder = folder / "transformer"
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{folder}: no config.json; expected a diffusers WanTransformer3DModel folder"
        )
    config = json.loads(config_path.read_text())
    if config.get("_class_name") not in (None, "WanTransformer3DModel"):
        raise ValueError(
            f"{config_path}: _class_name is {config['_class_name']!r}, expected WanTransformer3DModel"
        )
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickled = sorted(p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        hint = (
            f" (found {pickled}: convert them to safetensors first; omni never loads pickle files)"
            if pickled
            else ""
        )
        raise FileNotFoundError(f"{folder}: no .safetensors weights{hint}")
    state_dict: dict[str, torch.Tensor] = {}
    for path in files:
        state_dict.update(load_file(str(path)))
    return config, state_dict


def convert_wan(
    wan_folder: str | Path, out_folder: str | Path | None = None, **overrides: Any
) -> OmniTransformer:
    """Build an OmniTransformer whose video expert holds the Wan weights; save it when `out_folder` is given.

    `overrides` set omni-only options such as `audio_in_channels` or `audio_ffn_dim`.
    """
    wan_config, wan_state = load_wan_checkpoint(wan_folder)
    model = OmniTransformer(**omni_config_from_wan(wan_config, **overrides))
    video_state = convert_wan_state_dict(wan_state)
    expected = model.state_dict()
    for key, value in video_state.items():
        if key not in expected:
            raise ValueError(f"converted key {key!r} is not in OmniTransformer")
        if expected[key].shape != value.shape:
            raise ValueError(
                f"{key}: Wan shape {tuple(value.shape)} != omni shape {tuple(expected[key].shape)}"
            )
    missing = [
        k for k in expected if k.startswith(("experts.video.", "text_embedder.")) and k not in video_state
    ]
    missing += [k for k in expected if re.match(r"blocks\.\d+\.experts\.video\.", k) and k not in video_state]
    if missing:
        raise ValueError(f"the Wan checkpoint lacks video-expert weights: {missing[:5]}")
    model.load_state_dict(video_state, strict=False)
    if out_folder is not None:
        model.save_pretrained(out_folder, safe_serialization=True)
    return model
