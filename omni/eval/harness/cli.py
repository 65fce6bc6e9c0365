"""`omni bench run | score | report`: generate a suite, score every system's outputs, write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omni.eval.harness.run import RUN_FILE, read_run, render_ground_truth, run_suite
from omni.eval.harness.suite import Suite, load_suite


def register(kinds) -> None:
    """Add run / score / report to the `omni bench` sub-commands."""
    from omni.cli import _add_model_arguments

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
    _add_model_arguments(p)
    p.set_defaults(run=_run)

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


def _run(args: argparse.Namespace) -> None:
    from omni.cli import CLIError

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


def _suite_of_runs(results: Path) -> Suite:
    """The suite a run.json in one of the systems' folders names, for `score` without --suite."""
    from omni.cli import CLIError

    if results.is_dir():
        for folder in sorted(p for p in results.iterdir() if p.is_dir()):
            path = read_run(folder).get("suite_path")
            if path and Path(path).is_file():
                return load_suite(path)
    raise CLIError(f"no run.json in {results}/* names a suite file; give --suite")
