"""Helpers shared by tests."""

from __future__ import annotations

import torch

TINY_TRANSFORMER = dict(
    num_attention_heads=2,
    attention_head_dim=16,
    in_channels=4,
    out_channels=4,
    audio_in_channels=8,
    text_dim=16,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter with small random values (zero-initialised gates would hide bugs)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    return model


# Tiny diffusers Wan pipelines, one per layout omni converts: Wan 2.1 T2V (Wan 2.1 VAE), Wan 2.2 TI2V-5B
# (48-channel Wan 2.2 VAE with 2x2 pixel patches, per-token timesteps) and Wan 2.2 A14B (two experts).
WAN_LAYOUTS = ("wan2.1-t2v", "wan2.2-ti2v", "wan2.2-a14b")
WAN_TEXT_DIM = 16


def tiny_wan_pipeline(layout: str, seed: int = 0):
    """A diffusers `WanPipeline` of `layout` with small random weights (every gate non-zero)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import T5TokenizerFast, UMT5Config, UMT5EncoderModel

    if layout not in WAN_LAYOUTS:
        raise ValueError(f"unknown Wan layout {layout!r}; choose one of {WAN_LAYOUTS}")
    torch.manual_seed(seed)
    z_dim = 48 if layout == "wan2.2-ti2v" else 4
    vae_args = dict(base_dim=16, z_dim=z_dim, num_res_blocks=1)
    if layout == "wan2.2-ti2v":  # the Wan 2.2 VAE: residual blocks on 2x2-patchified pixels, 16x in space
        vae_args.update(
            decoder_base_dim=16,
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            scale_factor_spatial=16,
        )
    vae_args.update(
        latents_mean=[0.1 * i for i in range(z_dim)], latents_std=[1.0 + 0.1 * i for i in range(z_dim)]
    )
    vae = AutoencoderKLWan(**vae_args).eval()

    def transformer(seed: int) -> WanTransformer3DModel:
        model = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=z_dim,
            out_channels=z_dim,
            text_dim=WAN_TEXT_DIM,
            freq_dim=32,
            ffn_dim=32,
            num_layers=2,
            rope_max_seq_len=64,
        )
        return randomize(model, seed).eval()

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(c, -1.0 - 0.01 * i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz▁")]
    tokenizer = T5TokenizerFast(vocab=vocab, extra_ids=0)
    encoder_config = UMT5Config(
        vocab_size=len(vocab),
        d_model=WAN_TEXT_DIM,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
    )
    text_encoder = UMT5EncoderModel(encoder_config).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    two = layout == "wan2.2-a14b"
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer(seed),
        transformer_2=transformer(seed + 1) if two else None,
        boundary_ratio=0.875 if two else None,
        expand_timesteps=layout == "wan2.2-ti2v",
    )
