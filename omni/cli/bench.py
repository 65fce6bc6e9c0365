"""`omni bench`: speed benchmarks (transformer, generate, train, attention) and the benchmark harness
(run, score, report); the measuring lives in omni.eval and omni.train, the printing here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from omni.cli import COMMANDS, CLIError, add_model_arguments, import_if_built
from omni.cli.train import add_set_argument


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help=COMMANDS["bench"][1])
    kinds = bench.add_subparsers(dest="bench", required=True)
    p = kinds.add_parser(
        "transformer", help="omni forward time vs diffusers' Wan transformer on the same shapes"
    )
    p.add_argument("--preset", default="toy", help="omni/configs/<preset>.yaml: the transformer's shapes")
    p.add_argument(
        "--tokens", type=int, nargs="+", help="token counts to time (default: one clip, --frames/--size)"
    )
    p.add_argument("--audio-share", type=float, default=0.2, help="with --tokens: share of audio tokens")
    p.add_argument("--ltx2", action="store_true", help="also time diffusers' LTX-2 transformer with audio")
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
    kernels = import_if_built("omni_kernels.bench")  # the attention kernels' benchmark, when they are built
    if kernels is not None:
        kernels.register(kinds)
    _register_generate(kinds)
    _register_train(kinds)
    _register_harness(kinds)


def _run_transformer(args: argparse.Namespace) -> None:
    from omni.eval.speed import (
        TransformerRow,
        TransformerShape,
        bench_transformer,
        clip_shape,
        transformer_table,
    )
    from omni.media.geometry import parse_size
    from omni.pipelines.loading import resolve_device, resolve_dtype

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    if args.tokens:
        shapes = [TransformerShape.by_tokens(n, args.audio_share) for n in args.tokens]
    else:
        height, width = parse_size(args.size)
        shapes = [clip_shape(args.preset, args.frames, height, width, args.audio_seconds)]
    print(
        f"transformer forward, preset {args.preset}, {device} {str(dtype).removeprefix('torch.')}; "
        f"median [p10-p90] of {args.repeats} interleaved repeats' ratios. omni runs at Wan's math (the "
        "preset's options Wan lacks off; 'preset' is the preset as it is); an audio token's cost compares "
        "omni with some tokens as audio against omni with all of them video (goal <= 1.1x)"
    )
    printed: list[TransformerRow] = []

    def print_row(row: TransformerRow) -> None:  # each shape as it is measured: a stopped run keeps them
        print("\n".join(transformer_table([row], header=not printed)), flush=True)
        printed.append(row)

    _, clock = bench_transformer(
        args.preset, shapes, args.text_tokens, args.repeats, device, dtype, ltx2=args.ltx2, on_row=print_row
    )
    print(f"clock: {clock}")


def _register_generate(kinds) -> None:
    p = kinds.add_parser(
        "generate", help="seconds per generated clip with audio at the model's default steps"
    )
    p.add_argument("--seconds", type=float, default=2.0, help="clip length")
    p.add_argument("--steps", type=int, help="default: the model's")
    p.add_argument("--repeats", type=int, default=3, help="timed clips (after one warm-up)")
    add_model_arguments(p)
    p.set_defaults(run=_run_generate)


def _run_generate(args: argparse.Namespace) -> None:
    from omni.eval.bench_generate import bench_generate
    from omni.pipelines.loading import load_model

    loaded = load_model(args.model, args.preset, args.device, args.dtype, args.attention)
    result = bench_generate(loaded.pipeline, args.seconds, args.repeats, args.steps)
    threads = torch.get_num_threads()
    print(
        f"generate {args.seconds:g} s t2av with {loaded.description}, {result['steps']} steps, "
        f"{loaded.pipeline.device} ({threads} threads), median of {args.repeats}:"
    )
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result["stages"].items())
    print(f"  {result['seconds_per_clip']:.2f} s per clip (best {result['min_seconds']:.2f} s): {stages}")


def _register_train(kinds) -> None:
    p = kinds.add_parser("train", help="training tokens/s and MFU of a preset on synthetic latents")
    p.add_argument("--preset", default="toy", help="omni/configs/<preset>.yaml: the transformer's shapes")
    add_set_argument(
        p,
        "overrides",
        "override a preset value, e.g. --set transformer.patch_size=[1,4,4] (repeatable): time a variant",
    )
    p.add_argument("--batch-size", type=int, default=8, help="clips per step")
    p.add_argument("--frames", type=int, default=33, help="pixel frames per clip")
    p.add_argument("--size", default="64", help="N or WxH in pixels")
    p.add_argument("--audio-seconds", type=float, default=2.0, help="audio per clip (0: video only)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (after two warm-up steps)")
    p.add_argument("--device", default="auto", help="auto (CUDA GPU when present), cpu, cuda, cuda:N")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="default: on for CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile every block")
    p.add_argument("--activation-checkpointing", action="store_true", help="recompute activations per block")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> None:
    from omni.media.geometry import parse_size
    from omni.pipelines.loading import resolve_device
    from omni.pipelines.presets import load_preset
    from omni.train.bench import bench_train, train_markdown
    from omni.train.config import ParallelSection

    height, width = parse_size(args.size)
    device = resolve_device(args.device)
    parallel = ParallelSection(
        fsdp=False,
        activation_checkpointing=args.activation_checkpointing,
        compile=args.compile,
        mixed_precision="bf16" if args.bf16 or (args.bf16 is None and device.type == "cuda") else "fp32",
    )
    r = bench_train(
        load_preset(args.preset, dict(args.overrides)),
        args.batch_size,
        args.frames,
        height,
        width,
        args.audio_seconds,
        args.steps,
        device,
        parallel,
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"train step, preset {args.preset} ({r['parameters'] / 1e6:.1f}M params), batch {args.batch_size}, "
        f"{args.frames} frames {width}x{height} + {args.audio_seconds:g} s audio, {name}, {parallel.mixed_precision}, "
        f"compile={parallel.compile}, checkpointing={parallel.activation_checkpointing}"
        + "".join(f", {key}={value}" for key, value in args.overrides)
    )
    print(
        f"  step {r['step_seconds'] * 1e3:.1f} ms (median of {args.steps}), {r['tokens_per_step']} tokens/step"
    )
    print(f"  {r['tokens_per_second']:.0f} tokens/s, {r['tflops']:.3f} TFLOP/s", end="")
    if r["mfu"] is not None:
        print(f", MFU {r['mfu']:.1%} of {r['peak_tflops']:.3g} TFLOP/s ({r['peak_source']})")
    else:
        print(" (unknown peak: set OMNI_PEAK_TFLOPS for MFU)")
    print("\n".join(train_markdown(r, args.preset, name, parallel.mixed_precision, args.batch_size)))


def _register_harness(kinds) -> None:
    """run / score / report: the benchmark harness."""
    p = kinds.add_parser("run", help="generate every item of a benchmark suite (resumable)")
    p.add_argument("--suite", type=Path, required=True, help="suite YAML, e.g. suites/workflows.yaml")
    p.add_argument("--out", type=Path, required=True, help="this system's results folder, e.g. results/omni")
    p.add_argument("--limit", type=int, help="only the first N items")
    p.add_argument("--seed", type=int, default=0, help="seed of items that set none")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument(
        "--ground-truth",
        action="store_true",
        help="write the toy-world ground-truth render of items with a scene instead of generating",
    )
    add_model_arguments(p)
    p.set_defaults(run=_run_suite)

    p = kinds.add_parser("score", help="score every system's outputs in a results folder")
    p.add_argument("results", type=Path, help="folder with one sub-folder per system")
    p.add_argument("--suite", type=Path, help="suite YAML (default: the one a run.json in the results names)")
    p.add_argument("--trust-anchors", type=Path, help="PEM bundle of trusted roots for content credentials")
    p.add_argument(
        "--metric-weights", type=Path, help="folder (clip/ dino/ clap/ i3d/) or YAML of weight folders"
    )
    p.add_argument("--systems", help="comma-separated systems to score (default: every sub-folder)")
    p.add_argument("--reference", help="system that FVD compares with (default: 'reference' if present)")
    p.add_argument("--device", default="cpu", help="device for learned metrics")
    p.set_defaults(run=_score)

    p = kinds.add_parser("report", help="write report.html (+ .csv, .json) from a scored results folder")
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, help="HTML file (default: <results>/report.html)")
    p.set_defaults(run=_report)


def _run_suite(args: argparse.Namespace) -> None:
    from omni.eval.harness.run import RUN_FILE, render_ground_truth, run_suite
    from omni.eval.harness.suite import load_suite

    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be at least 1, got {args.limit}")
    suite = load_suite(args.suite)
    if args.ground_truth:
        written = render_ground_truth(suite, args.out, limit=args.limit)
        print(f"wrote {len(written)} ground-truth clips into {args.out}")
        return
    from omni.pipelines.loading import load_model

    loaded = load_model(args.model, args.preset, args.device, args.dtype, args.attention)
    system = {
        "name": "omni",
        "model": loaded.description,
        "random_weights": loaded.random_weights,
        "device": str(loaded.pipeline.device),
        "dtype": str(loaded.pipeline.transformer.dtype).removeprefix("torch."),
        "steps": args.steps,
    }
    options = {} if args.steps is None else {"num_inference_steps": args.steps}
    record = run_suite(
        suite, loaded.pipeline, args.out, system=system, seed=args.seed, limit=args.limit, **options
    )
    done = len(record["items"])
    print(f"{args.out}: {done} of {len(suite.items)} items done; timings in {args.out / RUN_FILE}")


def _score(args: argparse.Namespace) -> None:
    from omni.eval.harness.score import SCORES_FILE, score_results
    from omni.eval.harness.suite import load_suite
    from omni.eval.learned import load_learned_metrics

    suite = load_suite(args.suite) if args.suite else _suite_of_runs(args.results)
    if args.trust_anchors is not None:
        from omni.media.provenance import read_trust_anchors

        read_trust_anchors(args.trust_anchors)  # a bad bundle fails here, not as "unreadable" on every file
    learned, unavailable = load_learned_metrics(args.metric_weights, args.device)
    for name, reason in unavailable.items():
        if args.metric_weights is not None:
            print(f"omni bench score: {name} unavailable: {reason}", file=sys.stderr)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()] if args.systems else None
    scores = score_results(
        args.results,
        suite,
        trust_anchors=args.trust_anchors,
        learned=learned,
        unavailable=unavailable,
        systems=systems,
        reference=args.reference,
    )
    for system, entry in scores["systems"].items():
        s = entry["summary"]
        print(f"{system}: {s['scored']} scored, {s['missing']} missing, {s['broken']} broken")
    print(f"wrote {args.results / SCORES_FILE}")


def _report(args: argparse.Namespace) -> None:
    from omni.eval.harness.report import write_report

    paths = write_report(args.results, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))


def _suite_of_runs(results: Path):
    """The suite a run.json in one of the systems' folders names, for `score` without --suite."""
    from omni.eval.harness.run import read_run
    from omni.eval.harness.suite import load_suite

    if results.is_dir():
        for folder in sorted(p for p in results.iterdir() if p.is_dir()):
            path = read_run(folder).get("suite_path")
            if path and Path(path).is_file():
                return load_suite(path)
    raise CLIError(f"no run.json in {results}/* names a suite file; give --suite")
