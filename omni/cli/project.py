"""`omni project shots.yaml --out film.mp4`: generate a shot list with subject memory into one film."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from omni.cli import COMMANDS, CLIError, add_model_arguments


def run(args: argparse.Namespace) -> None:
    from omni.apps.project import ProjectRunner, load_project
    from omni.media.output import prepare_output, write_result
    from omni.models.weights import weights_sha256
    from omni.pipelines.loading import load_model
    from omni.pipelines.pipeline_omni import OmniPipelineOutput

    if args.out.suffix.lower() != ".mp4":
        raise CLIError(f"--out {args.out}: a project is written as an .mp4 file")
    project = load_project(args.shots)
    signer = prepare_output(args.out)
    start = time.perf_counter()
    loaded = load_model(args.model, args.preset, args.device, args.dtype, args.attention)
    cache = args.cache or args.out.with_name(args.out.stem + ".cache")
    runner = ProjectRunner(
        loaded.pipeline, project, args.shots.parent, cache, weights_sha256(loaded.pipeline.transformer)
    )
    frames, audio, results = runner.run()
    for shot, result in results:
        state = "cached" if result.cached else "generated"
        print(f"  {shot.id}: {len(result.frames) / project.defaults.fps:.2f} s {state} ({shot.transition})")
    output = OmniPipelineOutput(
        frames[None], None, audio[None], project.defaults.fps, loaded.pipeline.sample_rate
    )
    what = write_result(args.out, output, signer=signer)
    generated = sum(not r.cached for _, r in results)
    print(
        f"wrote {args.out} ({what}; {len(results)} shots, {generated} generated) in {time.perf_counter() - start:.1f} s"
    )


def register(subparsers) -> None:

    p = subparsers.add_parser("project", help=COMMANDS["project"][1])
    p.add_argument("shots", type=Path, help="the shot list (see docs/workflow.md)")
    p.add_argument("--out", type=Path, required=True, help="the film (.mp4)")
    p.add_argument("--cache", type=Path, help="shot cache folder (default: <out>.cache next to the film)")
    add_model_arguments(p)
    p.set_defaults(run=run)
