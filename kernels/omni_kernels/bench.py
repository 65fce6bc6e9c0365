"""Kernel benchmarks: attention TFLOP/s of omni's Triton kernels beside sdpa's flash and cuDNN backends (and
flash_attn / xformers when installed), and the fused norms' GB/s beside the PyTorch code they replace.

    python -m omni_kernels.bench                  # the full report; needs a CUDA GPU
    omni bench attention --seqlens 16384 --head-dims 128
    omni bench attention --list                   # the registered attention backends and what they support
    TRITON_INTERPRET=1 python -m omni_kernels.bench --smoke   # CPU: a tiny correctness run, no timings worth reading

Attention FLOPs count the matmuls only, as flash-attention does: forward 4 * B * H * Lq * Lk * D, backward 2.5x
that (five matmuls against two).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from omni.ops.attention import attention, available_backends, get_backend
from omni.ops.rope import apply_rope, rope_frequencies

# Triton is imported inside the functions that run kernels, so the `omni` CLI can mount this module (and
# `--list` works) where triton is not installed.

COMPARED_BACKENDS = ("triton", "sdpa_flash", "sdpa_cudnn", "flash_attn", "xformers")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# The performance goals of kernels/README.md, checked at bf16, d=128, 16k tokens, non-causal.
GOAL_SEQLEN, GOAL_HEAD_DIM = 16384, 128
GOAL_FWD_TFLOPS, GOAL_FWD_VS_SDPA, GOAL_BWD_VS_SDPA, GOAL_NORM_BANDWIDTH = 600.0, 1.0, 0.9, 0.8


@dataclass
class AttentionTiming:
    backend: str
    seqlen: int
    head_dim: int
    key_padding: bool = False
    fwd_ms: float | None = None
    bwd_ms: float | None = None
    fwd_tflops: float | None = None
    bwd_tflops: float | None = None
    note: str = ""


@dataclass
class NormTiming:
    name: str
    impl: str
    fwd_ms: float
    bwd_ms: float
    fwd_gbps: float
    bwd_gbps: float


def attention_flops(batch: int, heads: int, lq: int, lk: int, head_dim: int) -> tuple[float, float]:
    """(forward, backward) matmul FLOPs of non-causal attention."""
    forward = 4.0 * batch * heads * lq * lk * head_dim
    return forward, 2.5 * forward


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Milliseconds per call: triton's do_bench (median) on CUDA; one wall-clock call elsewhere (smoke runs)."""
    if device.type == "cuda":
        from triton.testing import do_bench

        return lambda fn: do_bench(fn, warmup=25, rep=100, return_mode="median")

    def once(fn):
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3

    return once


def _time_fwd_bwd(fn: Callable[[], Tensor], inputs: Sequence[Tensor], timer) -> tuple[float, float]:
    """(forward ms, backward ms) of fn(), the backward timed alone on a retained graph."""
    fn()  # compile and autotune outside the timing
    fwd_ms = timer(fn)  # a training forward: what the backward needs is saved
    out = fn()
    grad = torch.randn_like(out)
    out.backward(grad, retain_graph=True)

    def backward():
        for x in inputs:
            x.grad = None
        out.backward(grad, retain_graph=True)

    return fwd_ms, timer(backward)


def run_attention_benchmark(
    seqlens: Sequence[int] = (4096, 16384, 32768),
    head_dims: Sequence[int] = (64, 128),
    *,
    dtype: torch.dtype = torch.bfloat16,
    batch: int = 1,
    model_dim: int = 2048,
    backends: Sequence[str] | None = None,
    rope: bool = False,
    key_padding: Sequence[bool] = (False,),
    norms: bool = True,
    smoke: bool = False,
    markdown: bool = False,
    print_fn: Callable[[str], None] = print,
) -> list[AttentionTiming] | None:
    """Print forward and backward TFLOP/s per backend, sequence length and head dim, then the fused norms' GB/s.

    Heads are `model_dim // head_dim`, so every row moves the same hidden size. `key_padding` lists the mask
    settings to run: True pads the last eighth of the keys (backends without key-padding masks are skipped).
    `markdown` also prints each shape's rows of `attention_markdown` as soon as it is measured (a run stopped
    early keeps the shapes it finished). `smoke` shrinks everything to a few hundred tokens; on the CPU that is the only mode, and only under TRITON_INTERPRET=1 (timings there
    measure the Python interpreter, not the kernels). Returns the attention timings, or None when there is
    nothing to run on.
    """
    from omni_kernels._triton import INTERPRET

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not (smoke and INTERPRET):
        print_fn(
            "omni bench attention needs a CUDA GPU (none found): it reports TFLOP/s and GB/s measured on one.\n"
            "For a correctness smoke run on the CPU: TRITON_INTERPRET=1 python -m omni_kernels.bench --smoke"
        )
        return None
    if smoke:
        seqlens, head_dims, model_dim = [192], [64], 128
    # On the CPU only `sdpa` (the reference) runs beside ours; the compared backends are CUDA kernels.
    wanted = ["triton", "sdpa"] if device.type == "cpu" else list(backends or COMPARED_BACKENDS)
    timer = _timer(device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else "CPU under the Triton interpreter (a smoke run: its timings measure Python, not the kernels)"
    )
    print_fn(f"attention on {name}: {str(dtype).removeprefix('torch.')}, batch {batch}, model dim {model_dim}, "
             f"non-causal{', RoPE' if rope else ''}; fwd FLOPs 4*B*H*L^2*D, bwd 2.5x fwd")  # fmt: skip
    print_fn(f"{'seqlen':>7} {'d':>4} {'backend':<11} {'fwd ms':>9} {'fwd TFLOP/s':>12} {'bwd ms':>9} "
             f"{'bwd TFLOP/s':>12}  note")  # fmt: skip

    results = []
    if markdown:
        print_fn("\n".join(attention_markdown([])))
    for padded in key_padding:
        # sdpa's memory-efficient kernel takes masks where its flash and cuDNN kernels do not
        compared = wanted + (["sdpa_efficient"] if padded and device.type == "cuda" else [])
        for seqlen in seqlens:
            for head_dim in head_dims:
                shape = (batch, seqlen, max(1, model_dim // head_dim), head_dim)
                timings = _bench_attention_shape(
                    shape, dtype, device, compared, rope, padded, timer, print_fn
                )
                results += timings
                if markdown:
                    print_fn("\n".join(attention_markdown(timings, header=False)))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if device.type == "cuda":
        _print_attention_goals(results, print_fn)
        _print_tuned_configs(print_fn)
    if norms:
        run_norm_benchmark(smoke=smoke, dtype=dtype, print_fn=print_fn)
    return results


def _bench_attention_shape(
    shape, dtype, device, backends, rope, padded, timer, print_fn
) -> list[AttentionTiming]:
    """Time every backend on q, k, v of `shape` (B, L, H, D); note each output's distance to the first's."""
    batch, seqlen, heads, head_dim = shape
    generator = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(shape, generator=generator).to(device, dtype).requires_grad_() for _ in range(3))
    angles = _rope(seqlen, head_dim, device) if rope else None
    mask = None
    if padded:  # the last eighth of every row's keys is padding
        mask = torch.ones(batch, seqlen, dtype=torch.bool, device=device)
        mask[:, seqlen - seqlen // 8 :] = False
    fwd_flops, bwd_flops = attention_flops(batch, heads, seqlen, seqlen, head_dim)
    registered = set(available_backends())
    reference = None
    results = []
    for backend in backends:
        timing = AttentionTiming(backend, seqlen, head_dim, padded)
        results.append(timing)
        if backend not in registered:
            timing.note = "not installed"
            print_fn(_format_attention(timing))
            continue
        fn = lambda b=backend: attention(q, k, v, key_padding_mask=mask, rope=angles, backend=b)  # noqa: E731
        try:
            timing.fwd_ms, timing.bwd_ms = _time_fwd_bwd(fn, (q, k, v), timer)
            timing.fwd_tflops = fwd_flops / timing.fwd_ms * 1e-9
            timing.bwd_tflops = bwd_flops / timing.bwd_ms * 1e-9
            with torch.no_grad():
                out = fn()
            if reference is None:
                reference = (backend, out)
            else:
                distance = (out.float() - reference[1].float()).abs().max().item()
                timing.note = f"max |out - {reference[0]}| {distance:.1e}"
        except Exception as error:  # one backend failing (unsupported, out of memory) must not end the report
            timing.note = f"skipped: {type(error).__name__}: {str(error).splitlines()[0][:90]}"
        for x in (q, k, v):
            x.grad = None
        print_fn(_format_attention(timing))
    return results


def _rope(length: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(cos, sin) (1, L, 1, D/2) for a video-like (frames, 30, 52) token grid flattened to `length` tokens."""
    frames = math.ceil(length / (30 * 52))
    grid = torch.stack(
        torch.meshgrid(torch.arange(frames), torch.arange(30), torch.arange(52), indexing="ij"), -1
    )
    cos, sin = rope_frequencies(grid.reshape(-1, 3)[:length].to(device), head_dim)
    return cos[None, :, None], sin[None, :, None]


def _format_attention(t: AttentionTiming) -> str:
    def num(x, spec):
        return format(x, spec) if x is not None else format("-", ">" + spec.split(".")[0])

    return (
        f"{t.seqlen:>7} {t.head_dim:>4}{'m' if t.key_padding else ' '}{t.backend:<11} {num(t.fwd_ms, '9.3f')} {num(t.fwd_tflops, '12.1f')} "
        f"{num(t.bwd_ms, '9.3f')} {num(t.bwd_tflops, '12.1f')}  {t.note}"
    )


def attention_markdown(results: Sequence[AttentionTiming], header: bool = True) -> list[str]:
    """A markdown table of the timings: forward and forward+backward TFLOP/s of each backend, and its ratio to
    the best other backend on the same shape (above 1: faster than every other one measured)."""
    lines = [
        "| tokens | head dim | key padding | backend | fwd ms | fwd TFLOP/s | fwd vs best other | fwd+bwd ms "
        "| fwd+bwd TFLOP/s | fwd+bwd vs best other | note |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ][: 2 if header else 0]

    def both(t: AttentionTiming) -> float | None:  # forward+backward TFLOP/s: 3.5x the forward's FLOPs
        if t.fwd_ms is None or t.bwd_ms is None:
            return None
        return t.fwd_tflops * 3.5 * t.fwd_ms / (t.fwd_ms + t.bwd_ms)

    def vs_best(t: AttentionTiming, same: list[AttentionTiming], rate) -> str:
        others = [rate(o) for o in same if o is not t and rate(o)]
        return f"{rate(t) / max(others):.2f}x" if rate(t) and others else ""

    for t in results:
        same = [
            o
            for o in results
            if (o.seqlen, o.head_dim, o.key_padding) == (t.seqlen, t.head_dim, t.key_padding)
        ]
        measured = t.fwd_ms is not None
        cells = [
            str(t.seqlen),
            str(t.head_dim),
            "last 1/8" if t.key_padding else "none",
            t.backend,
            f"{t.fwd_ms:.3f}" if measured else "",
            f"{t.fwd_tflops:.1f}" if measured else "",
            vs_best(t, same, lambda o: o.fwd_tflops),
            f"{t.fwd_ms + t.bwd_ms:.3f}" if measured else "",
            f"{both(t):.1f}" if measured else "",
            vs_best(t, same, both),
            t.note.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _print_attention_goals(results: list[AttentionTiming], print_fn) -> None:
    """Our standing against the goals at bf16, d=128, 16k tokens (kernels/README.md)."""
    at_goal = {r.backend: r for r in results if (r.seqlen, r.head_dim) == (GOAL_SEQLEN, GOAL_HEAD_DIM)}
    ours = at_goal.get("triton")
    sdpa = [r for name, r in at_goal.items() if name.startswith("sdpa") and r.fwd_tflops]
    if ours is None or ours.fwd_tflops is None or not sdpa:
        print_fn(
            f"goals: not measured (needs triton and an sdpa backend at L={GOAL_SEQLEN}, d={GOAL_HEAD_DIM})"
        )
        return
    best_fwd = max(r.fwd_tflops for r in sdpa)
    best_bwd = max(r.bwd_tflops for r in sdpa)
    checks = [
        (f"fwd >= {GOAL_FWD_TFLOPS:.0f} TFLOP/s", ours.fwd_tflops >= GOAL_FWD_TFLOPS, f"{ours.fwd_tflops:.0f}"),
        (f"fwd >= {GOAL_FWD_VS_SDPA}x best sdpa", ours.fwd_tflops >= GOAL_FWD_VS_SDPA * best_fwd,
         f"{ours.fwd_tflops / best_fwd:.2f}x"),
        (f"bwd >= {GOAL_BWD_VS_SDPA}x best sdpa", ours.bwd_tflops >= GOAL_BWD_VS_SDPA * best_bwd,
         f"{ours.bwd_tflops / best_bwd:.2f}x"),
    ]  # fmt: skip
    for goal, met, value in checks:
        print_fn(f"goal {goal:<28} {'met' if met else 'NOT met':<8} ({value})")


def _print_tuned_configs(print_fn) -> None:
    from omni_kernels import attention as fa

    for name, kernel in (
        ("fwd", fa._attn_fwd),
        ("bwd dK/dV", fa._attn_bwd_dkdv),
        ("bwd dQ", fa._attn_bwd_dq),
    ):
        for key, config in getattr(kernel, "cache", {}).items():
            print_fn(f"autotuned {name:<9} {config}  (key {key})")


def run_norm_benchmark(
    *,
    tokens: int = 16384,
    heads: int = 24,
    head_dim: int = 128,
    frames: int = 16,
    dtype: torch.dtype = torch.bfloat16,
    smoke: bool = False,
    print_fn: Callable[[str], None] = print,
) -> list[NormTiming]:
    """GB/s of the fused norms and of the eager PyTorch code they replace, forward and backward.

    Bytes are the least each op must move (inputs read once, outputs written once); the device's copy
    bandwidth (a large `copy_`) is printed as the ceiling the goal (80%) is measured against.
    """
    from omni.models.transformer import gated, modulate  # needs diffusers: imported only for this table
    from omni_kernels.norms import gated_residual, layer_norm_modulate, rms_norm_rope

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if smoke:
        tokens, heads, head_dim, frames = 64, 2, 32, 4
    dim = heads * head_dim
    timer = _timer(device)
    size = torch.tensor([], dtype=dtype).element_size()
    generator = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape, dt=dtype):
        return torch.randn(shape, generator=generator).to(device, dt).requires_grad_()

    x, y = randn(1, tokens, dim), randn(1, tokens, dim)
    shift, scale, gate = (randn(1, frames, dim, dt=torch.float32) for _ in range(3))
    weight = randn(dim)
    grid = torch.stack(torch.meshgrid(torch.arange(frames), torch.arange(tokens // frames), torch.arange(1),
                                      indexing="ij"), -1)  # fmt: skip
    cos, sin = rope_frequencies(grid.reshape(-1, 3).to(device), head_dim)
    angles = (cos[None, :, None], sin[None, :, None])
    elements = tokens * dim
    mods = frames * dim * 4
    cases = [
        ("layer_norm_modulate", (x, shift, scale), 2 * elements * size + 2 * mods, 3 * elements * size + 8 * tokens,
         lambda: layer_norm_modulate(x, shift, scale, eps=1e-6),
         lambda: modulate(F.layer_norm(x.float(), (dim,), eps=1e-6), shift, scale).type_as(x)),
        ("gated_residual", (x, y, gate), 3 * elements * size + mods, 3 * elements * size + mods,
         lambda: gated_residual(x, y, gate),
         lambda: (x.float() + gated(y.float(), gate)).type_as(x)),
        ("rms_norm_rope", (x, weight), 2 * elements * size + cos.numel() * 8,
         3 * elements * size + cos.numel() * 8,
         lambda: rms_norm_rope(x, weight, angles, heads=heads, eps=1e-6),
         lambda: apply_rope(F.rms_norm(x, (dim,), weight, 1e-6).unflatten(-1, (heads, head_dim)), *angles)),
    ]  # fmt: skip

    copy_gbps = None
    if device.type == "cuda":
        src = torch.empty(256 * 2**20, dtype=torch.uint8, device=device)
        dst = torch.empty_like(src)
        copy_gbps = 2 * src.numel() / timer(lambda: dst.copy_(src)) * 1e-6
    print_fn(f"fused norms: {tokens} tokens x {dim} channels ({heads} heads x {head_dim}), "
             f"{str(dtype).removeprefix('torch.')}, {frames} modulation groups"
             + (f"; device copy bandwidth {copy_gbps:.0f} GB/s" if copy_gbps else ""))  # fmt: skip
    print_fn(f"{'op':<20} {'impl':<7} {'fwd ms':>9} {'fwd GB/s':>9} {'bwd ms':>9} {'bwd GB/s':>9}  "
             f"{'fwd/bwd % of copy' if copy_gbps else ''}")  # fmt: skip
    results = []
    for name, inputs, fwd_bytes, bwd_bytes, fused, eager in cases:
        for impl, fn in (("fused", fused), ("torch", eager)):
            fwd_ms, bwd_ms = _time_fwd_bwd(fn, inputs, timer)
            for t in inputs:
                t.grad = None
            timing = NormTiming(
                name, impl, fwd_ms, bwd_ms, fwd_bytes / fwd_ms * 1e-6, bwd_bytes / bwd_ms * 1e-6
            )
            results.append(timing)
            share = (
                f"{100 * timing.fwd_gbps / copy_gbps:.0f}% / {100 * timing.bwd_gbps / copy_gbps:.0f}%"
                if copy_gbps
                else ""
            )
            print_fn(f"{name:<20} {impl:<7} {fwd_ms:9.3f} {timing.fwd_gbps:9.0f} {bwd_ms:9.3f} "
                     f"{timing.bwd_gbps:9.0f}  {share}")  # fmt: skip
    if copy_gbps:
        fused_rows = [r for r in results if r.impl == "fused"]
        worst = min(min(r.fwd_gbps, r.bwd_gbps) for r in fused_rows) / copy_gbps
        met = "met" if worst >= GOAL_NORM_BANDWIDTH else "NOT met"
        print_fn(
            f"goal fused norms >= {GOAL_NORM_BANDWIDTH:.0%} of copy bandwidth: {met} (worst {worst:.0%})"
        )
    return results


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seqlens", type=int, nargs="+", default=[4096, 16384, 32768], help="tokens per sample"
    )
    parser.add_argument("--head-dims", type=int, nargs="+", default=[64, 128], help="head dimensions")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="input dtype")
    parser.add_argument("--batch", type=int, default=1, help="samples per call")
    parser.add_argument("--model-dim", type=int, default=2048, help="heads = model dim // head dim")
    parser.add_argument("--backends", nargs="+", default=list(COMPARED_BACKENDS), help="attention backends")
    parser.add_argument("--rope", action="store_true", help="apply RoPE (fused in triton, before the others)")
    parser.add_argument(
        "--key-padding",
        choices=("none", "padded", "both"),
        default="none",
        help="keys: none padded, the last eighth padded, or both runs",
    )
    parser.add_argument("--markdown", action="store_true", help="also print the timings as a markdown table")
    parser.add_argument("--no-norms", action="store_true", help="skip the fused-norm benchmark")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes; the CPU mode under TRITON_INTERPRET=1"
    )
    parser.add_argument("--list", action="store_true", help="list the attention backends and exit")


def list_backends(print_fn: Callable[[str], None] = print) -> None:
    """Print every registered attention backend with what it declares it supports."""
    print_fn(f"{'backend':<15} {'devices':<11} {'dtypes':<20} {'max d':>5}  mask  rope  description")
    for name in available_backends():
        b = get_backend(name)
        dtypes = ",".join(
            sorted(
                str(d).removeprefix("torch.").replace("float", "fp").replace("bfp", "bf") for d in b.dtypes
            )
        )
        print_fn(
            f"{name:<15} {','.join(sorted(b.devices)):<11} {dtypes:<20} {b.max_head_dim or '-':>5}  "
            f"{'yes' if b.supports_key_padding_mask else 'no':<4}  {'yes' if b.supports_rope else 'no':<4}  {b.description}"
        )


def run(args: argparse.Namespace) -> int:
    """Run what the parsed arguments ask for; the exit code (1 when there is nothing to measure on)."""
    if args.list:
        list_backends()
        return 0
    try:
        import triton  # noqa: F401
    except ImportError:
        print("omni bench attention needs triton (pip install -e '.[gpu]'), and a CUDA GPU to measure on")
        return 1
    results = run_attention_benchmark(
        args.seqlens,
        args.head_dims,
        dtype=DTYPES[args.dtype],
        batch=args.batch,
        model_dim=args.model_dim,
        backends=args.backends,
        rope=args.rope,
        key_padding={"none": (False,), "padded": (True,), "both": (False, True)}[args.key_padding],
        norms=not args.no_norms,
        smoke=args.smoke,
        markdown=args.markdown,
    )
    return 0 if results is not None else 1


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `attention` command to a `bench` subcommand group (`omni bench attention ...`).

    As every omni command, the parser's `run` default takes the parsed args and returns an exit code.
    """
    parser = subparsers.add_parser(
        "attention",
        help="attention and fused-norm kernel throughput against sdpa (needs a CUDA GPU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m omni_kernels.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
