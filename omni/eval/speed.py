"""Speed benchmarks behind `omni bench`: measured numbers, printed, never asserted in tests."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from omni.models.streams import LatentStream
from omni.pipelines.presets import load_preset


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float  # median over the measured repeats
    tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def measure_interleaved(fns: list[Callable[[], object]], repeats: int, warmup: int = 1) -> list[float]:
    """Median wall time of each function, timed in turns (a, b, c, a, b, c, ...), so that a change in the
    machine's load during the run affects every function alike."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def wan_twin(omni_model) -> torch.nn.Module:
    """A diffusers `WanTransformer3DModel` with the shapes (and converted weights) of omni's video expert."""
    from diffusers import WanTransformer3DModel

    from omni.models.convert_wan import convert_wan_state_dict

    cfg = omni_model.config
    wan = WanTransformer3DModel(
        patch_size=tuple(cfg.patch_size),
        num_attention_heads=cfg.num_attention_heads,
        attention_head_dim=cfg.attention_head_dim,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        text_dim=cfg.text_dim,
        freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim,
        num_layers=cfg.num_layers,
        cross_attn_norm=cfg.cross_attn_norm,
        eps=cfg.eps,
    )
    omni_state = omni_model.state_dict()
    renamed = convert_wan_state_dict({k: v for k, v in wan.state_dict().items()})
    wan.load_state_dict(
        {wan_key: omni_state[omni_key] for wan_key, omni_key in zip(wan.state_dict(), renamed)}
    )
    return wan


def bench_transformer(
    preset: str,
    frames: int,
    height: int,
    width: int,
    audio_seconds: float,
    text_tokens: int,
    repeats: int,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[Timing]:
    """Forward time of omni (video only, then video + audio) and of Wan's transformer on the same video shapes."""
    from omni.models.transformer import OmniTransformer, cast_keeping_fp32

    cfg = load_preset(preset)
    torch.manual_seed(0)
    model = cast_keeping_fp32(OmniTransformer(**cfg.transformer), dtype).to(device).eval()
    wan = wan_twin(model).to(device, dtype).eval()
    temporal, spatial = cfg.video_compression()
    latent_frames = (frames - 1) // temporal + 1
    video = torch.randn(
        1,
        model.config.in_channels,
        latent_frames,
        height // spatial,
        width // spatial,
        device=device,
        dtype=dtype,
    )
    t = torch.full((1,), 500.0, device=device)
    text = torch.randn(1, text_tokens, model.config.text_dim, device=device, dtype=dtype)
    video_stream = LatentStream("video", video, t)
    video_tokens = model.num_tokens([video_stream])

    audio_vae = cfg.audio_vae
    mel_bins = audio_vae.get("mel_bins", 64) // 4
    audio_channels = model.config.audio_in_channels // mel_bins
    hop = audio_vae.get("mel_hop_length", 160)
    rate = audio_vae.get("sample_rate", 16000)
    audio_frames = max(1, round(audio_seconds * rate / hop / 4))
    audio = torch.randn(1, audio_channels, audio_frames, mel_bins, device=device, dtype=dtype)
    audio_stream = LatentStream("audio", audio, t, frame_seconds=4 * hop / rate)

    variants = [("wan (video)", lambda: wan(video, t, text), video_tokens)]
    variants.append(("omni (video)", lambda: model([video_stream], text), video_tokens))
    if audio_seconds > 0:
        both = [video_stream, audio_stream]
        variants.append(("omni (video+audio)", lambda: model(both, text), video_tokens + audio_frames))
    with torch.no_grad():
        seconds = measure_interleaved([fn for _, fn, _ in variants], repeats)
    results = [Timing(name, s, tokens) for (name, _, tokens), s in zip(variants, seconds)]
    return results


def _run_transformer(args: argparse.Namespace) -> None:
    from omni.cli import parse_size
    from omni.pipelines.loading import resolve_device, resolve_dtype

    height, width = parse_size(args.size)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    results = bench_transformer(
        args.preset,
        args.frames,
        height,
        width,
        args.audio_seconds,
        args.text_tokens,
        args.repeats,
        device,
        dtype,
    )
    print(
        f"transformer forward, preset {args.preset}, {args.frames} frames {width}x{height}, "
        f"{args.audio_seconds:g} s audio, {device} {str(dtype).removeprefix('torch.')}, median of {args.repeats}"
    )
    print(f"{'model':<20} {'tokens':>7} {'ms':>10} {'tokens/s':>12}")
    for r in results:
        print(f"{r.name:<20} {r.tokens:>7} {r.seconds * 1e3:>10.2f} {r.tokens_per_second:>12.0f}")
    wan, video = results[0], results[1]
    print(f"omni video-only / wan time: {video.seconds / wan.seconds:.3f}x (goal <= 1.05x)")
    if len(results) > 2:
        both = results[2]
        print(
            f"adding audio: time x{both.seconds / video.seconds:.3f} for tokens x{both.tokens / video.tokens:.3f} "
            f"(time per token x{(both.seconds / both.tokens) / (video.seconds / video.tokens):.3f})"
        )


def register(subparsers) -> None:
    from omni.cli import COMMANDS

    bench = subparsers.add_parser("bench", help=COMMANDS["bench"][1])
    kinds = bench.add_subparsers(dest="bench", required=True)
    p = kinds.add_parser(
        "transformer", help="omni forward time vs diffusers' Wan transformer on the same shapes"
    )
    p.add_argument("--preset", default="toy", help="configs/<preset>.yaml: the transformer's shapes")
    p.add_argument("--frames", type=int, default=33, help="pixel frames (1 + 4k)")
    p.add_argument("--size", default="64", help="N or WxH in pixels")
    p.add_argument("--audio-seconds", type=float, default=0.0, help="audio tokens added (0: video only)")
    p.add_argument("--text-tokens", type=int, default=64, help="text tokens cross-attended to")
    p.add_argument("--repeats", type=int, default=10, help="timed forwards per model, interleaved")
    p.add_argument("--device", default="auto", help="auto (CUDA GPU when present), cpu, cuda, cuda:N")
    p.add_argument(
        "--dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16"
    )
    p.set_defaults(run=_run_transformer)
    from omni.cli import import_if_built

    for module_name in (
        "omni_kernels.bench",
        "omni.eval.bench_generate",
        "omni.train.bench",
        "omni.eval.harness.cli",
    ):
        module = import_if_built(module_name)
        if module is not None:
            module.register(kinds)
