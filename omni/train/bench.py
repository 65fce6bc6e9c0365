"""`omni bench train`: training throughput (tokens/s) and MFU of a preset on synthetic latents."""

from __future__ import annotations

import statistics
import time

import torch

from omni.data.batch import LatentBatch
from omni.pipelines.presets import PresetConfig, build_transformer, load_preset
from omni.train.config import ParallelSection
from omni.train.distributed import DistInfo
from omni.train.metrics import peak_flops
from omni.train.objective import ObjectiveConfig, flow_matching_loss
from omni.train.parallelize import parallelize


def synthetic_batch(
    preset, batch_size: int, frames: int, height: int, width: int, audio_seconds: float, device
):
    """Random normalised latents with the shapes the preset's codecs would produce."""
    cfg = load_preset(preset) if isinstance(preset, str) else preset
    t = cfg.transformer
    temporal, spatial = cfg.video_compression()
    latent_frames = (frames - 1) // temporal + 1
    video = torch.randn(
        batch_size, t["in_channels"], latent_frames, height // spatial, width // spatial, device=device
    )
    mel_bins = cfg.audio_vae.get("mel_bins", 64) // 4
    hop, rate = cfg.audio_vae.get("mel_hop_length", 160), cfg.audio_vae.get("sample_rate", 16000)
    audio = None
    if audio_seconds > 0:
        audio_frames = max(1, round(audio_seconds * rate / hop / 4))
        audio = torch.randn(
            batch_size, t["audio_in_channels"] // mel_bins, audio_frames, mel_bins, device=device
        )
    text_len = cfg.pipeline.get("max_text_tokens", 64)
    text = torch.randn(batch_size, text_len, t["text_dim"], device=device)
    mask = torch.ones(batch_size, text_len, dtype=torch.bool, device=device)
    return LatentBatch(video, audio, text, mask, temporal / 16, 4 * hop / rate)


def bench_train(
    preset: str | PresetConfig,
    batch_size: int,
    frames: int,
    height: int,
    width: int,
    audio_seconds: float,
    steps: int,
    device: torch.device,
    parallel: ParallelSection,
) -> dict:
    """Median step time over `steps` (after 2 warm-up steps), tokens/s, TFLOP/s and MFU."""
    cfg = load_preset(preset) if isinstance(preset, str) else preset
    torch.manual_seed(0)
    model = build_transformer(cfg).to(device).train()
    model = parallelize(model, parallel, DistInfo(0, 1, device, 1, None, None))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = synthetic_batch(cfg, batch_size, frames, height, width, audio_seconds, device)
    empty = torch.zeros_like(batch.text[:1])
    objective = ObjectiveConfig(tasks={"t2av": 1.0})
    dtype = torch.bfloat16 if parallel.mixed_precision == "bf16" else torch.float32
    times, tokens, flops = [], 0, 0
    for step in range(steps + 2):
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = flow_matching_loss(
                model, batch, empty, batch.text_mask[:1], objective, torch.Generator().manual_seed(step)
            )
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if step >= 2:
            times.append(time.perf_counter() - start)
        tokens = out.tokens
        per_sample = [
            s.__class__(s.modality, s.latents[:1], s.timesteps[:1], s.start_seconds, s.frame_seconds)
            for s in out.streams
        ]
        flops = 3 * batch_size * model.forward_flops(per_sample, batch.text.shape[1])
    seconds = statistics.median(times)
    peak = peak_flops(device, dtype)
    mfu = None
    if peak is not None:
        peak.mfu(flops / min(times))  # the fastest step bounds the peak from below
        mfu = peak.mfu(flops / seconds)
    return {
        "step_seconds": seconds,
        "tokens_per_step": tokens,
        "tokens_per_second": tokens / seconds,
        "tflops": flops / seconds / 1e12,
        "mfu": mfu,
        "peak_tflops": peak.flops / 1e12 if peak else None,
        "peak_source": peak.source if peak else None,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def train_markdown(r: dict, preset: str, device_name: str, precision: str, batch_size: int) -> list[str]:
    """`bench_train`'s result as a markdown table."""
    mfu = (
        f"{r['mfu']:.1%} of {r['peak_tflops']:.4g} TFLOP/s ({r['peak_source']})"
        if r["mfu"] is not None
        else ""
    )
    return [
        "| preset | params | device | precision | batch | tokens/step | step ms | tokens/s | TFLOP/s | MFU |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {preset} | {r['parameters'] / 1e6:.1f}M | {device_name} | {precision} | {batch_size} | "
        f"{r['tokens_per_step']} | {r['step_seconds'] * 1e3:.1f} | {r['tokens_per_second']:.0f} | "
        f"{r['tflops']:.3f} | {mfu} |",
    ]
