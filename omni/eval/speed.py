"""Speed benchmarks behind `omni bench`: measured numbers, printed, never asserted in tests."""

from __future__ import annotations

import os
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
    times: tuple[float, ...]  # seconds of each measured repeat, in the order they ran
    tokens: int

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def ratios(a: Timing, b: Timing) -> tuple[float, float, float]:
    """Median, lowest and highest of the per-repeat ratios a / b: each pair ran back to back, so a change of
    load between repeats cancels out."""
    values = sorted(x / y for x, y in zip(a.times, b.times))
    return statistics.median(values), values[0], values[-1]


class _CpuClock:
    """CPU time of this process on one thread pinned to one core: other jobs on the machine take wall time
    from a run but add no CPU time to it (by wall clock the same command once gave 1.068x, then 0.976x)."""

    name = "CPU time, 1 thread pinned to one core"

    def __enter__(self):
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if self._cores:  # the last allowed core: core 0 usually takes the machine's interrupts
            os.sched_setaffinity(0, {max(self._cores)})
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self._threads)
        if self._cores:
            os.sched_setaffinity(0, self._cores)

    def time(self, fn: Callable[[], object]) -> float:
        start = time.process_time()
        fn()
        return time.process_time() - start


class _CudaClock:
    """CUDA events around each call: the GPU's own time, whatever the host does meanwhile."""

    name = "CUDA events"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def time(self, fn: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def measure_interleaved(
    fns: list[Callable[[], object]], repeats: int, warmup: int = 1, device: str | torch.device = "cpu"
) -> tuple[list[tuple[float, ...]], str]:
    """Seconds of each call of each function, timed in turns (a, b, c, a, b, c, ...) so that a change in the
    machine's load affects every function alike, and the clock's name: CUDA events on a GPU, single-thread
    CPU time on the CPU."""
    clock = _CudaClock() if torch.device(device).type == "cuda" else _CpuClock()
    times: list[list[float]] = [[] for _ in fns]
    with clock:
        for fn in fns:
            for _ in range(warmup):
                fn()
        for _ in range(repeats):
            for fn, bucket in zip(fns, times):
                bucket.append(clock.time(fn))
    return [tuple(bucket) for bucket in times], clock.name


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
) -> tuple[list[Timing], str]:
    """Forward time of omni (video only, then video + audio) and of Wan's transformer on the same video shapes,
    and the clock that measured them."""
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
        times, clock = measure_interleaved([fn for _, fn, _ in variants], repeats, device=device)
    return [Timing(name, t, tokens) for (name, _, tokens), t in zip(variants, times)], clock
