"""Speed benchmarks behind `omni bench`: measured numbers, printed, never asserted in tests."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

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


# The preset options omni has and Wan lacks, at their defaults: with them so, omni computes Wan's math exactly.
WAN_EQUIVALENT = dict(
    pooled_text=False, prediction="velocity", video_head_hidden=0, video_head_conv=0, video_head_features=0
)
TOY_FRAMES = 17  # latent frames of the toy clip (33 frames at 2x temporal compression): grids prefer them


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


@dataclass(frozen=True)
class Spread:
    """Median and p10-p90 of per-repeat values."""

    median: float
    p10: float
    p90: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), percentile(values, 0.1), percentile(values, 0.9))

    def __str__(self) -> str:
        return f"{self.median:.3f}x [{self.p10:.3f}-{self.p90:.3f}]"


def token_grid(tokens: int, frames: int = TOY_FRAMES) -> tuple[int, int, int]:
    """(frames, rows, cols) with frames * rows * cols == `tokens`: the frame count nearest `frames` that divides
    `tokens`, then the squarest rows x cols. Timing depends on the token count, not on the grid's shape."""
    if tokens < 1:
        raise ValueError(f"a shape needs at least one token, got {tokens}")
    f = min((d for d in range(1, tokens + 1) if tokens % d == 0), key=lambda d: (abs(d - frames), d))
    per_frame = tokens // f
    rows = max(d for d in range(1, math.isqrt(per_frame) + 1) if per_frame % d == 0)
    return f, rows, per_frame // rows


@dataclass(frozen=True)
class TransformerShape:
    """One measured shape: `tokens` in all; with audio, `audio_tokens` of them are audio."""

    tokens: int
    audio_tokens: int
    video_grid: tuple[int, int, int]  # the video tokens of the video-only run (tokens of them)
    mixed_grid: tuple[int, int, int]  # the video tokens of the run with audio (tokens - audio_tokens)

    @classmethod
    def by_tokens(cls, tokens: int, audio_share: float) -> TransformerShape:
        if not 0 <= audio_share < 1:
            raise ValueError(f"audio share must be in [0, 1), got {audio_share}")
        audio = round(audio_share * tokens)
        return cls(
            tokens, audio, token_grid(tokens), token_grid(tokens - audio) if audio else token_grid(tokens)
        )


@dataclass(frozen=True)
class TransformerRow:
    """Timings of one shape: Wan and omni on `tokens` video tokens; omni (and LTX-2) with audio tokens."""

    shape: TransformerShape
    timings: dict[str, Timing]

    @property
    def equal_length(self) -> bool:
        """Whether the video-only runs hold as many tokens as the run with audio."""
        return math.prod(self.shape.video_grid) == self.shape.tokens

    def ratio(self, a: str, b: str) -> Spread | None:
        if a not in self.timings or b not in self.timings:
            return None
        return Spread.of([x / y for x, y in zip(self.timings[a].times, self.timings[b].times)])

    @property
    def audio_token_cost(self) -> Spread | None:
        """What an audio token costs in time, as a multiple of a video token: omni with `audio_tokens` of its
        tokens as audio against omni with all of them video. The same length makes the same attention cost, so
        the ratio isolates the audio expert: time ratio R gives an audio token 1 + (R - 1) * tokens / audio."""
        if "omni (audio)" not in self.timings or not self.equal_length:
            return None
        scale = self.shape.tokens / self.shape.audio_tokens
        both, video = self.timings["omni (audio)"].times, self.timings["omni"].times
        return Spread.of([1 + (x / y - 1) * scale for x, y in zip(both, video)])


def ltx2_twin(omni_model, device, dtype) -> torch.nn.Module:
    """A diffusers `LTX2VideoTransformer3DModel` of omni's widths, depth and audio channels (random weights:
    LTX-2's blocks differ from omni's, so only its speed is compared). Its FFNs are 4x wide where omni's
    preset may choose another width."""
    from diffusers import LTX2VideoTransformer3DModel

    cfg = omni_model.config
    video_channels = cfg.in_channels * math.prod(cfg.patch_size)
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    return (
        LTX2VideoTransformer3DModel(
            in_channels=video_channels,
            out_channels=video_channels,
            num_attention_heads=cfg.num_attention_heads,
            attention_head_dim=cfg.attention_head_dim,
            cross_attention_dim=dim,
            audio_in_channels=cfg.audio_in_channels,
            audio_out_channels=cfg.audio_in_channels,
            audio_num_attention_heads=cfg.num_attention_heads,
            audio_attention_head_dim=cfg.attention_head_dim,
            audio_cross_attention_dim=dim,
            num_layers=cfg.num_layers,
            caption_channels=cfg.text_dim,
        )
        .to(device, dtype)
        .eval()
    )


def bench_transformer(
    preset: str,
    shapes: Sequence[TransformerShape],
    text_tokens: int = 64,
    repeats: int = 10,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    ltx2: bool = False,
    overrides: Sequence[tuple[str, object]] = (),
    on_row: Callable[[TransformerRow], None] | None = None,
) -> tuple[list[TransformerRow], str]:
    """Forward time, per shape, of diffusers' Wan transformer and omni on the same video tokens (omni at Wan's
    math: the preset's shapes with the options Wan lacks off, and, where those differ, the preset as it is),
    and of omni with some of the tokens as audio (beside `LTX2VideoTransformer3DModel` when `ltx2`). All
    models of a shape run interleaved; returns the rows and the clock's name. `on_row` gets each shape's row
    as soon as it is measured."""
    from omni.models.transformer import OmniTransformer, cast_keeping_fp32

    cfg = load_preset(preset, dict(overrides))
    options = dict(cfg.transformer)
    wan_math = {**options, **WAN_EQUIVALENT}
    torch.manual_seed(0)
    with torch.device(device):  # weights made where they run: a 1.3B model starts in seconds on a GPU
        model = cast_keeping_fp32(OmniTransformer(**wan_math), dtype).eval()
        as_preset = None
        if any(options.get(key, value) != value for key, value in WAN_EQUIVALENT.items()):
            as_preset = cast_keeping_fp32(OmniTransformer(**options), dtype).eval()
        wan = wan_twin(model).to(device, dtype).eval()
        ltx = ltx2_twin(model, device, dtype) if ltx2 and model.has_audio_expert else None
    patch = tuple(model.config.patch_size)
    hop, rate = cfg.audio_vae.get("mel_hop_length", 160), cfg.audio_vae.get("sample_rate", 16000)
    mel_bins = cfg.audio_vae.get("mel_bins", 64) // 4
    t = torch.full((1,), 500.0, device=device)
    text = torch.randn(1, text_tokens, model.config.text_dim, device=device, dtype=dtype)

    def video(grid):
        latents = torch.randn(
            1, model.config.in_channels, *(g * p for g, p in zip(grid, patch)), device=device
        )
        return latents.to(dtype)

    rows, clock = [], ""
    for shape in shapes:
        clip = video(shape.video_grid)
        stream = LatentStream("video", clip, t)
        cases = {
            "wan": lambda clip=clip: wan(clip, t, text),
            "omni": lambda stream=stream: model([stream], text),
        }
        if as_preset is not None:
            cases["omni (preset)"] = lambda stream=stream: as_preset([stream], text)
        if shape.audio_tokens and model.has_audio_expert:
            mixed = video(shape.mixed_grid)
            audio = torch.randn(1, model.config.audio_in_channels // mel_bins, shape.audio_tokens, mel_bins)
            audio = audio.to(device, dtype)
            both = [
                LatentStream("video", mixed, t),
                LatentStream("audio", audio, t, frame_seconds=4 * hop / rate),
            ]
            cases["omni (audio)"] = lambda both=both: model(both, text)
            if ltx is not None:
                cases["ltx2 (audio)"] = _ltx2_call(ltx, mixed, audio, text, t, shape.mixed_grid)
        with torch.no_grad():
            times, clock = measure_interleaved(list(cases.values()), repeats, device=device)
        rows.append(TransformerRow(shape, {n: Timing(n, x, shape.tokens) for n, x in zip(cases, times)}))
        if on_row is not None:
            on_row(rows[-1])
    return rows, clock


def _ltx2_call(
    ltx, video_latents: Tensor, audio: Tensor, text: Tensor, t: Tensor, grid
) -> Callable[[], object]:
    """LTX-2's forward on omni's inputs: patchified video tokens (B, N, C*p), audio tokens (B, A, C*M)."""
    from einops import rearrange

    f, h, w = grid
    tokens = rearrange(
        video_latents, "b c (f pf) (h ph) (w pw) -> b (f h w) (c pf ph pw)", f=f, h=h, w=w
    ).contiguous()
    audio_tokens = rearrange(audio, "b c t m -> b t (c m)").contiguous()
    video_t = t[:, None].expand(-1, tokens.shape[1])
    audio_t = t[:, None].expand(-1, audio_tokens.shape[1])
    return lambda: ltx(
        hidden_states=tokens,
        audio_hidden_states=audio_tokens,
        encoder_hidden_states=text,
        audio_encoder_hidden_states=text,
        timestep=video_t,
        audio_timestep=audio_t,
        num_frames=f,
        height=h,
        width=w,
        audio_num_frames=audio_tokens.shape[1],
        return_dict=False,
    )


def transformer_table(rows: Sequence[TransformerRow], header: bool = True) -> list[str]:
    """Markdown lines: per shape, omni / Wan on video tokens, and with audio the cost of an audio token."""
    has_preset = any("omni (preset)" in r.timings for r in rows)
    has_ltx = any("ltx2 (audio)" in r.timings for r in rows)
    head = ["tokens", "of them audio", "Wan ms", "omni ms", "omni / Wan"]
    head += ["preset / Wan"] if has_preset else []
    head += ["audio token / video token"]
    head += ["LTX-2 ms", "omni / LTX-2"] if has_ltx else []
    lines = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)][: 2 if header else 0]
    for r in rows:
        ms = {name: f"{t.seconds * 1e3:.1f}" for name, t in r.timings.items()}
        video_tokens = str(math.prod(r.shape.video_grid))
        cells = [video_tokens, "0", ms["wan"], ms["omni"], str(r.ratio("omni", "wan"))]
        cells += [str(r.ratio("omni (preset)", "wan") or "")] if has_preset else []
        cells += [""] + (["", ""] if has_ltx else [])
        lines.append("| " + " | ".join(cells) + " |")
        if "omni (audio)" in r.timings:
            # Wan (video only) is the reference where it ran on as many tokens as omni with audio.
            wan = (ms["wan"], str(r.ratio("omni (audio)", "wan"))) if r.equal_length else ("", "")
            cells = [str(r.shape.tokens), str(r.shape.audio_tokens), wan[0], ms["omni (audio)"], wan[1]]
            cells += [""] if has_preset else []
            cells += [str(r.audio_token_cost or "")]
            if has_ltx:
                cells += [ms.get("ltx2 (audio)", ""), str(r.ratio("omni (audio)", "ltx2 (audio)") or "")]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def clip_shape(preset: str, frames: int, height: int, width: int, audio_seconds: float) -> TransformerShape:
    """The tokens of a clip of `frames` pixel frames at height x width and `audio_seconds` of audio under the
    preset's codecs: the video-only run takes the clip; the run with audio takes the clip and its audio."""
    cfg = load_preset(preset)
    temporal, spatial = cfg.video_compression()
    patch = cfg.transformer.get("patch_size", (1, 2, 2))
    latent = ((frames - 1) // temporal + 1, height // spatial, width // spatial)
    if any(n % p for n, p in zip(latent, patch)):
        raise ValueError(
            f"{frames} frames {width}x{height} make latents {latent} that patches {patch} do not divide"
        )
    grid = tuple(n // p for n, p in zip(latent, patch))
    hop, rate = cfg.audio_vae.get("mel_hop_length", 160), cfg.audio_vae.get("sample_rate", 16000)
    audio = round(audio_seconds * rate / hop / 4) if audio_seconds > 0 else 0
    return TransformerShape(math.prod(grid) + audio, audio, grid, grid)
