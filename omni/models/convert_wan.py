"""Initialise omni's video expert from a diffusers `WanTransformer3DModel` checkpoint (Wan 2.1 / 2.2).

The video expert keeps Wan's block layout, so conversion is a renaming of keys (a state-dict adapter):

    patch_embedding.*                    -> experts.video.patch_embedding.*
    condition_embedder.time_embedder.*   -> experts.video.time_embedder.*
    condition_embedder.time_proj.*       -> experts.video.time_proj.*
    condition_embedder.text_embedder.*   -> text_embedder.*
    blocks.N.*                           -> blocks.N.experts.video.*
    proj_out.*, scale_shift_table        -> experts.video.proj_out.*, experts.video.scale_shift_table

The image modality embedding starts at zero; a converted model has no audio expert unless one is asked for
(`audio_in_channels`), and then it keeps its fresh (adaLN-zero) initialisation.

`convert_wan_pipeline` turns a whole diffusers Wan pipeline folder into an OmniPipeline folder: the
transformer(s) renamed shard by shard (never all in memory at once), Wan's own VAE, text encoder, tokenizer and
scheduler copied, and Wan's conventions written into the configs (zero-padded 512-token prompts attended
without a mask, diffusers' prompt cleaning, integer RoPE frame positions at the model's frame rate, the
expert switch of Wan 2.2 A14B).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from omni.config import read_json
from omni.models.transformer import OmniTransformer
from omni.models.weights import check_safetensors_only, check_weights_fit

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


# What to convert instead of a Wan layout omni cannot run.
RUNNABLE_LAYOUTS = (
    "Wan 2.1 T2V (1.3B or 14B) and run `--task i2v` on it, or Wan 2.2 TI2V-5B, whose training matches omni's "
    "i2v (a clean first latent frame), or Wan 2.2 T2V-A14B"
)
# Wan's frame rate by VAE latent channels: the Wan 2.1 VAE (16) serves the 16 fps models, the Wan 2.2 VAE (48)
# TI2V-5B at 24 fps. Default sizes and lengths are those of the Wan releases.
WAN_DEFAULTS = {
    16: dict(default_fps=16.0, default_height=480, default_width=832, default_seconds=81 / 16),
    48: dict(default_fps=24.0, default_height=704, default_width=1280, default_seconds=121 / 24),
}
WAN_TEXT_TOKENS = 512  # Wan pads every prompt to 512 tokens and attends to all of them
WAN_PIPELINES = ("WanPipeline", "WanImageToVideoPipeline")


def omni_config_from_wan(wan_config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """OmniTransformer kwargs whose video expert has the Wan model's exact shapes, with Wan's conventions:
    cross-attention over the zero-padded text without a mask, and no audio expert (unless overridden)."""
    for key in _UNSUPPORTED_KEYS:
        if wan_config.get(key) is not None:
            raise ValueError(
                f"Wan config sets {key}={wan_config[key]!r}: an image-to-video model with CLIP image "
                "cross-attention (Wan 2.1 I2V / FLF2V), which omni cannot run (it has no image encoder branch; "
                f"images enter omni as clean latent frames). Convert {RUNNABLE_LAYOUTS} instead"
            )
    if wan_config.get("in_channels") != wan_config.get("out_channels"):
        raise ValueError(
            f"Wan config has in_channels={wan_config.get('in_channels')} but "
            f"out_channels={wan_config.get('out_channels')}: an image-to-video model that takes the first "
            "frame as extra input channels (Wan 2.2 I2V-A14B), which omni cannot run (images enter omni as "
            f"clean latent frames). Convert {RUNNABLE_LAYOUTS} instead"
        )
    config = {key: wan_config[key] for key in _SHARED_KEYS if key in wan_config}
    config["patch_size"] = tuple(config.get("patch_size", (1, 2, 2)))
    config.update(audio_in_channels=0, mask_text_padding=False)
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
    config = read_json(config_path, "the Wan transformer config")
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

    `overrides` set omni-only options such as `audio_in_channels` or `audio_ffn_dim`. The whole model is built in
    memory: for a runnable folder from a Wan pipeline, use `convert_wan_pipeline`.
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


def convert_wan_transformer(wan_folder: Path, out_folder: Path, **overrides: Any) -> dict[str, Any]:
    """Write a video-only OmniTransformer folder from a `WanTransformer3DModel` folder, one safetensors shard at
    a time (dtypes and sharding kept), and return its config. Every Wan weight is used and the only new one is
    the image modality embedding, at zero. `overrides` may change conventions, not add an audio expert
    (training adds one: docs/training.md)."""
    config_path = wan_folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{wan_folder}: no config.json; expected a diffusers WanTransformer3DModel folder"
        )
    wan_config = read_json(config_path, "the Wan transformer config")
    if wan_config.get("_class_name") != "WanTransformer3DModel":
        raise ValueError(
            f"{config_path}: _class_name is {wan_config.get('_class_name')!r}, expected WanTransformer3DModel"
        )
    check_safetensors_only(wan_folder)
    files = sorted(wan_folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{wan_folder}: no .safetensors weights")
    with torch.device("meta"):
        model = OmniTransformer(**omni_config_from_wan(wan_config, **overrides))
    if model.has_audio_expert:
        raise ValueError(
            "a converted Wan pipeline is video-only: train an audio expert on it (docs/training.md)"
        )
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    out_folder.mkdir(parents=True, exist_ok=True)
    weight_map: dict[str, str] = {}
    for path in files:
        state = convert_wan_state_dict(load_file(str(path)))
        for key, value in state.items():
            if expected.get(key) != tuple(value.shape):
                want = expected.get(key, "no such weight")
                raise ValueError(f"{path}: {key}: Wan shape {tuple(value.shape)}, omni expects {want}")
        if path == files[-1]:  # the image embedding (the one weight Wan lacks) goes into the last shard
            dtype = next(iter(state.values())).dtype
            state["image_embedding"] = torch.zeros(expected["image_embedding"], dtype=dtype)
        save_file(state, str(out_folder / path.name), metadata={"format": "pt"})
        weight_map.update({key: path.name for key in state})
    lacking = sorted(set(expected) - set(weight_map))
    if lacking:
        raise ValueError(f"{wan_folder}: the Wan checkpoint lacks video-expert weights {lacking[:5]}")
    if len(files) > 1:
        index = {"metadata": {}, "weight_map": dict(sorted(weight_map.items()))}
        (out_folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
            json.dumps(index, indent=2)
        )
    model.save_config(out_folder)
    config = dict(model.config)
    check_weights_fit(out_folder, OmniTransformer, config)
    return config


def convert_wan_pipeline(
    wan_folder: str | Path, out_folder: str | Path, fps: float | None = None, **overrides: Any
) -> dict[str, Any]:
    """Write a runnable OmniPipeline folder from a diffusers Wan pipeline folder; returns its model_index.

    Converts `transformer` (and `transformer_2` with `boundary_ratio`, Wan 2.2 A14B) and copies Wan's VAE, text
    encoder, tokenizer and scheduler. `fps` sets the frame rate whose latent frames sit at Wan's integer RoPE
    positions (default: 16, or 24 for the Wan 2.2 VAE). Layouts omni cannot run are refused, naming what to use.
    """
    wan_folder, out_folder = Path(wan_folder), Path(out_folder)
    index_path = wan_folder / "model_index.json"
    if not index_path.is_file():
        raise FileNotFoundError(
            f"{wan_folder}: no model_index.json; expected a diffusers Wan pipeline folder (the Wan-AI/*-Diffusers "
            "layout, with transformer/, vae/, text_encoder/, tokenizer/, scheduler/)"
        )
    index = read_json(index_path, "the Wan pipeline index")
    name = index.get("_class_name")
    if name not in WAN_PIPELINES:
        raise ValueError(
            f"{index_path}: _class_name is {name!r}; omni converts {' or '.join(WAN_PIPELINES)} folders"
        )
    if _present(index.get("image_encoder")):
        raise ValueError(
            f"{wan_folder} is a Wan 2.1 I2V / FLF2V pipeline: it needs its CLIP image_encoder and image "
            f"cross-attention, which omni does not have. Convert {RUNNABLE_LAYOUTS} instead"
        )
    if name == "WanImageToVideoPipeline" and not index.get("expand_timesteps"):
        raise ValueError(
            f"{wan_folder} is a Wan image-to-video pipeline that takes the first frame as extra input channels, "
            f"which omni cannot run. Convert {RUNNABLE_LAYOUTS} instead"
        )
    missing = [
        part
        for part in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
        if not _present(index.get(part))
    ]
    if missing:
        raise ValueError(f"{wan_folder}: the Wan pipeline lacks {missing}; omni needs every one of them")
    boundary = index.get("boundary_ratio")
    experts = ["transformer"] + (["transformer_2"] if _present(index.get("transformer_2")) else [])
    if (boundary is None) != (len(experts) == 1):
        raise ValueError(
            f"{index_path}: boundary_ratio is {boundary!r} with {experts}: Wan 2.2 A14B needs both a transformer_2 "
            "and a boundary_ratio, the other Wan models neither"
        )
    for part in ("vae", "text_encoder", "tokenizer", "scheduler", *experts):
        if not (wan_folder / part).is_dir():
            raise FileNotFoundError(f"{wan_folder / part}: missing, though model_index.json lists {part}")
        check_safetensors_only(wan_folder / part)
    if out_folder.exists() and any(out_folder.iterdir()):
        raise FileExistsError(f"{out_folder} exists and is not empty; choose a new output folder")

    vae_config = read_json(wan_folder / "vae" / "config.json", "the Wan VAE config")
    z_dim = vae_config.get("z_dim", 16)
    defaults = dict(WAN_DEFAULTS.get(z_dim, WAN_DEFAULTS[16]))
    if fps is not None:
        if not 1 <= fps <= 120:
            raise ValueError(f"fps must be in [1, 120], got {fps!r}")
        defaults["default_fps"] = float(fps)
    temporal = vae_config.get("scale_factor_temporal", 4)
    overrides = {
        "rope_time_scale": defaults["default_fps"] / temporal,
        "per_token_timesteps": bool(index.get("expand_timesteps")),
        **overrides,
    }
    # Written beside the target and renamed when whole: a failed conversion leaves no half folder behind.
    partial = out_folder.with_name(f".{out_folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        configs = [
            convert_wan_transformer(wan_folder / part, partial / part, **overrides) for part in experts
        ]
        if len(configs) == 2:
            _check_same_layout(configs)
        for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
            shutil.copytree(wan_folder / part, partial / part)  # copies: a hard link would share later writes
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise

    omni_index = {
        "_class_name": "OmniPipeline",
        "_diffusers_version": index.get("_diffusers_version"),
        "transformer": ["omni.models.transformer", "OmniTransformer"],
        "transformer_2": ["omni.models.transformer", "OmniTransformer"]
        if len(experts) == 2
        else [None, None],
        "scheduler": index["scheduler"],
        "vae": index["vae"],
        "audio_vae": [None, None],
        "vocoder": [None, None],
        "text_encoder": index["text_encoder"],
        "tokenizer": index["tokenizer"],
        "text_encoder_source": None,
        "max_text_tokens": WAN_TEXT_TOKENS,
        "prompt_cleaning": "wan",
        "boundary_ratio": boundary,
        "default_steps": 50,
        "default_guidance": 5.0,
        **defaults,
    }
    (partial / "model_index.json").write_text(json.dumps(omni_index, indent=2, sort_keys=True) + "\n")
    if out_folder.exists():
        out_folder.rmdir()  # empty, checked above
    partial.rename(out_folder)
    return omni_index


def _present(entry: Any) -> bool:
    """A model_index component entry that names a class (diffusers writes [null, null] for an absent one)."""
    return isinstance(entry, list) and len(entry) == 2 and entry[1] is not None


def _check_same_layout(configs: list[dict[str, Any]]) -> None:
    keys = (
        "in_channels",
        "out_channels",
        "patch_size",
        "text_dim",
        "num_attention_heads",
        "attention_head_dim",
    )
    for key in keys:
        first, second = (str(list(c[key]) if isinstance(c[key], (list, tuple)) else c[key]) for c in configs)
        if first != second:
            raise ValueError(
                f"transformer and transformer_2 differ in {key}: {first} vs {second}; the two experts of "
                "Wan 2.2 A14B share one layout"
            )
