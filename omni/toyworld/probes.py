"""The shared start of the toy-model diagnostics in tools/ (context_use, sync_use, word_effect): parse a model
folder, a sample count and a seed, check them, and load the pipeline with a toy-world sample stream."""

from __future__ import annotations

import argparse
from pathlib import Path


def open_probe(
    tool: str, doc: str, count: str, default: int, what: str, frames: tuple[int, ...] | None = None
):
    """(args, pipe, transformer in eval mode, StreamedSamples) for `tool`'s command line; a bad count or a folder
    that is not a pipeline ends it with a one-line message. `frames`: the stream's clip lengths (None: the
    pipeline's default)."""
    from omni.data.prepare import default_format
    from omni.data.stream import StreamedSamples
    from omni.pipelines.pipeline_omni import OmniPipeline

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("model", help="an OmniPipeline folder of the toy preset (e.g. omni/assets/toy)")
    parser.add_argument(f"--{count}", type=int, default=default, help=f"{what} (default {default})")
    parser.add_argument("--seed", type=int, default=0, help="first scene and noise seed (default 0)")
    args = parser.parse_args()
    if getattr(args, count) < 1:
        raise SystemExit(f"{tool}: --{count} must be a positive integer, got {getattr(args, count)}")
    if not (Path(args.model) / "model_index.json").is_file():
        raise SystemExit(f"{tool}: {args.model} is not an OmniPipeline folder (no model_index.json)")
    pipe = OmniPipeline.from_pretrained(args.model)
    formats = default_format(pipe) if frames is None else default_format(pipe, frames=frames)
    stream = StreamedSamples("toyworld", pipe, formats, pipe.config.max_text_tokens)
    return args, pipe, pipe.transformer.eval(), stream
