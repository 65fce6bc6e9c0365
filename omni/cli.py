"""`omni` command line: generate | project | convert | prepare | train | bench | eval | toyworld | verify."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from omni.config import ConfigError

# Every command, the module whose `register(subparsers)` adds it, and its line in `omni --help`. Only the module
# of the command being run is imported, so `omni --help` and a mistyped command never import torch.
COMMANDS = {
    "generate": ("omni.cli", "generate video, audio or an image from a prompt and conditions"),
    "project": (
        "omni.conditioning.project_cli",
        "generate a multi-shot project (shot list YAML) into one mp4",
    ),
    "convert": ("omni.cli", "turn another model's pipeline folder into a runnable omni pipeline folder"),
    "prepare": ("omni.data.cli", "pre-encode clips into latent shards for training"),
    "train": ("omni.train.cli", "train omni on latent shards or a rendered stream (one process or torchrun)"),
    "bench": ("omni.eval.speed", "speed benchmarks and the benchmark harness (measured, printed)"),
    "eval": ("omni.eval.cli", "capability metrics against ground truth"),
    "toyworld": ("omni.data.toyworld.cli", "render procedural audio-visual toy-world clips"),
    "verify": ("omni.media.verify_cli", "check the content credentials of outputs"),
}


class HelpFormatter(argparse.HelpFormatter):
    """Appends each option's default to its help, unless the default is empty or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default in ([], "", argparse.SUPPRESS)
        if action.option_strings and not empty and "default" not in text:
            text += " (default: %(default)s)"
        return text


class ArgumentParser(argparse.ArgumentParser):
    """omni's parsers (subcommands inherit it): defaults shown in help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2. Commands return None or an exit status."""


def parse_size(text: str) -> tuple[int, int]:
    """`64` or `WxH` (e.g. `832x480`) -> (height, width)."""
    try:
        if "x" in text.lower():
            width, height = (int(v) for v in text.lower().split("x"))
        else:
            width = height = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--size must be N or WxH (e.g. 64 or 832x480), got {text!r}"
        ) from error
    return height, width


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="OmniPipeline folder (default: the built-in toy model)")
    parser.add_argument("--preset", help="build a random-weight model from configs/<preset>.yaml instead")
    parser.add_argument("--device", default="auto", help="auto (CUDA GPU when present), cpu, cuda, cuda:N")
    parser.add_argument(
        "--dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16"
    )
    parser.add_argument("--attention", help="attention backend (see `omni bench attention --list`)")


def _keyframe(text: str) -> tuple[float, Path]:
    """`SECONDS:PATH` -> (seconds, path)."""
    seconds, sep, path = text.partition(":")
    try:
        return float(seconds), Path(path)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--keyframe takes SECONDS:IMAGE (e.g. 1.5:key.png), got {text!r}"
        ) from error


def _register_generate(subparsers) -> None:
    from omni.conditioning.camera_presets import CAMERA_PRESETS
    from omni.pipelines.task_names import TASKS

    p = subparsers.add_parser("generate", help=COMMANDS["generate"][1])
    p.add_argument("--prompt", required=True, help="what to generate (text)")
    p.add_argument("--negative-prompt", default="", help="what to steer away from (text)")
    p.add_argument("--task", default="t2av", choices=TASKS, help="what to generate from what")
    p.add_argument("--image", type=Path, help="i2v: the approved key frame the video starts from")
    p.add_argument("--last-image", type=Path, help="the frame the video must end on")
    p.add_argument(
        "--keyframe",
        type=_keyframe,
        action="append",
        default=[],
        metavar="SECONDS:IMAGE",
        help="a frame the video must show at that time (repeatable)",
    )
    p.add_argument(
        "--reference",
        type=Path,
        action="append",
        default=[],
        help="an image of the subject to keep consistent (repeatable)",
    )
    p.add_argument("--audio", type=Path, help="a2v: music, beat or speech that drives the video")
    p.add_argument("--video", type=Path, help="v2a: the clip to score; extend / retake: the clip to work on")
    p.add_argument("--start", type=float, help="retake: start of the range to regenerate (seconds)")
    p.add_argument("--end", type=float, help="retake: end of the range to regenerate (seconds)")
    p.add_argument(
        "--modality", choices=("video", "audio", "both"), default="both", help="retake: what to redo"
    )
    p.add_argument(
        "--trajectory",
        type=Path,
        help='JSON {"points": [[t, x, y], ...]} or {"boxes": [[t, x0, y0, x1, y1], ...]}',
    )
    p.add_argument(
        "--camera",
        help=f'a preset ({", ".join(CAMERA_PRESETS)}) or JSON {{"keyframes": [[t, dx, dy, zoom], ...]}}',
    )
    p.add_argument(
        "--seconds", type=float, help="duration (extend: seconds to add; default: the model's or the input's)"
    )
    p.add_argument("--chunk-seconds", type=float, help="extend: longest piece generated at once")
    p.add_argument(
        "--frames",
        type=int,
        help="exact frame count instead of --seconds: 1 + k times the VAE's temporal factor (Wan: 4, toy: 2)",
    )
    p.add_argument("--fps", type=float, help="frames per second (default: the model's)")
    p.add_argument(
        "--size", type=parse_size, help="N or WxH in pixels, multiples of 16 (default: the model's)"
    )
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, help="text guidance scale (default: the model's)")
    p.add_argument(
        "--image-guidance", type=float, default=1.0, help="guidance of key frames, references, given video"
    )
    p.add_argument("--audio-guidance", type=float, default=1.0, help="guidance of given audio")
    p.add_argument("--scheduler", choices=("unipc", "euler"), help="override the model's sampler")
    p.add_argument("--seed", type=int, default=0, help="the same seed and inputs give the same output")
    p.add_argument(
        "--out", type=Path, help="output file (.mp4, .png or .wav; default outputs/<task>-<seed>.<ext>)"
    )
    _add_model_arguments(p)
    p.set_defaults(run=run_generate)


def read_conditions(args: argparse.Namespace, frames: int | None = None) -> dict:
    """Pipeline keyword arguments for the condition files named on the command line."""
    from omni import media
    from omni.conditioning.motion import CAMERA_PRESETS, CameraPath, Trajectory

    conditions: dict = {}
    for name in ("image", "last_image"):
        if getattr(args, name) is not None:
            conditions[name] = media.read_image(getattr(args, name))
    if args.keyframe:
        conditions["key_frames"] = [(at, media.read_image(path)) for at, path in args.keyframe]
    if args.reference:
        conditions["references"] = [media.read_image(path) for path in args.reference]
    if args.audio is not None:
        audio, rate = media.read_audio(args.audio)
        conditions.update(audio=audio, audio_sample_rate=rate)
    if args.video is not None:
        clip = media.read_video(args.video)
        if not clip.has_video:
            raise CLIError(f"--video {args.video}: the file has no video stream")
        conditions.update(video=clip.frames, video_fps=clip.fps)
        if args.task in ("extend", "retake") and clip.has_audio and args.audio is None:
            conditions.update(audio=clip.audio, audio_sample_rate=clip.sample_rate)
    if args.task == "retake":
        conditions.update(start=args.start, end=args.end, modality=args.modality)
    elif args.start is not None or args.end is not None:
        raise CLIError("--start / --end go with --task retake")
    if args.trajectory is not None or (args.camera is not None and args.camera not in CAMERA_PRESETS):
        if frames is None:
            raise CLIError("--trajectory and camera files need a known length: give --seconds or --frames")
        fps = args.fps or 16.0
        if args.trajectory is not None:
            conditions["trajectory"] = Trajectory.from_json(args.trajectory, frames, fps)
        if args.camera is not None and args.camera not in CAMERA_PRESETS:
            conditions["camera"] = CameraPath.from_json(Path(args.camera), frames, fps)
    if args.camera in CAMERA_PRESETS:
        conditions["camera"] = args.camera
    return conditions


def write_result(out: Path, result, record=None) -> str:
    """Write a pipeline output as png / wav / mp4 (atomically), sign it when a signer is configured, and
    describe what was written."""
    from omni import media
    from omni.media import provenance

    if result.images is not None:
        media.write_png(out, result.images[0])
        what = f"image {result.images.shape[2]}x{result.images.shape[1]}"
    elif result.frames is None:
        media.write_wav(out, result.audio[0], result.sample_rate)
        what = f"audio {result.audio.shape[-1] / result.sample_rate:.2f} s @ {result.sample_rate} Hz"
    else:
        audio = result.audio[0] if result.audio is not None else None
        media.write_mp4(
            out, result.frames[0], result.fps, audio, result.sample_rate if audio is not None else None
        )
        f = result.frames[0]
        what = f"{len(f) / result.fps:.2f} s, {len(f)} frames {f.shape[2]}x{f.shape[1]} @ {result.fps:g} fps"
        what += f", audio {result.sample_rate} Hz" if audio is not None else ", no audio"
    signer = provenance.signer_from_env()
    if signer is None:
        provenance.warn_unsigned_once()
    elif record is not None:
        provenance.sign_file(out, record, signer)
        what += ", signed"
    return what


def generation_record(loaded, args: argparse.Namespace, result):
    """What goes into the output's content credentials."""
    from omni.media.provenance import GenerationRecord, prompt_sha256
    from omni.models.weights import weights_sha256

    pipe = loaded.pipeline
    frames = result.frames[0] if result.frames is not None else None
    size = (
        result.images[0].shape[:2]
        if result.images is not None
        else frames.shape[1:3]
        if frames is not None
        else None
    )
    return GenerationRecord(
        model=loaded.description,
        weights_sha256=weights_sha256(pipe.transformer),
        task=args.task,
        prompt_sha256=prompt_sha256(args.prompt),
        seed=args.seed,
        steps=args.steps or pipe.config.default_steps,
        guidance_scales={
            "text": args.guidance if args.guidance is not None else pipe.config.default_guidance,
            "image": args.image_guidance,
            "audio": args.audio_guidance,
        },
        scheduler=type(pipe.scheduler).__name__,
        width=None if size is None else int(size[1]),
        height=None if size is None else int(size[0]),
        num_frames=None if frames is None else len(frames),
        fps=None if frames is None else result.fps,
        sample_rate=result.sample_rate if result.audio is not None else None,
        duration_seconds=len(frames) / result.fps
        if frames is not None
        else (result.audio.shape[-1] / result.sample_rate if result.audio is not None else None),
    )


def run_generate(args: argparse.Namespace) -> None:
    from omni.pipelines.loading import load_model
    from omni.pipelines.task_names import output_suffix

    suffix = output_suffix(args.task)
    out = args.out or Path("outputs") / f"{args.task}-{args.seed}{suffix}"
    if out.suffix.lower() != suffix:
        raise CLIError(f"--out {out}: task {args.task} writes a {suffix} file")
    fps = args.fps or 16.0
    frames = args.frames or (
        round(args.seconds * fps) if args.seconds and args.task not in ("extend", "retake") else None
    )
    conditions = read_conditions(args, frames)

    start = time.perf_counter()
    loaded = load_model(args.model, args.preset, args.device, args.dtype, args.attention, args.scheduler)
    load_seconds = time.perf_counter() - start
    if not loaded.pipeline.has_audio and args.audio is None:  # a clip's own soundtrack means nothing here
        conditions.pop("audio", None)
        conditions.pop("audio_sample_rate", None)
    height, width = args.size if args.size else (None, None)
    result = loaded.pipeline(
        args.prompt,
        task=args.task,
        seconds=args.seconds,
        num_frames=args.frames,
        fps=args.fps,
        height=height,
        width=width,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        image_guidance_scale=args.image_guidance,
        audio_guidance_scale=args.audio_guidance,
        negative_prompt=args.negative_prompt,
        seed=args.seed,
        chunk_seconds=args.chunk_seconds,
        **conditions,
    )
    start = time.perf_counter()
    what = write_result(out, result, generation_record(loaded, args, result))
    timings = {"load": load_seconds, **result.timings, "write": time.perf_counter() - start}
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
    print(f"wrote {out} ({what}) in {sum(timings.values()):.2f} s: {stages}")


def _register_convert(subparsers) -> None:
    p = subparsers.add_parser("convert", help=COMMANDS["convert"][1])
    p.add_argument(
        "--from", dest="source_format", required=True, choices=("wan",), help="source model family"
    )
    p.add_argument(
        "source",
        type=Path,
        help="diffusers Wan pipeline folder (Wan 2.1 T2V, Wan 2.2 TI2V-5B or T2V-A14B, *-Diffusers layout)",
    )
    p.add_argument("out", type=Path, help="output OmniPipeline folder (safetensors, video-only)")
    p.add_argument(
        "--fps",
        type=float,
        help="frame rate at which latent frames sit at Wan's positions (default: 16; 24 for Wan 2.2 TI2V-5B)",
    )
    p.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> None:
    from omni.models.convert_wan import convert_wan_pipeline

    if args.out.exists() and any(args.out.iterdir()):
        raise CLIError(f"{args.out} exists and is not empty; choose a new output folder")
    if (args.source / "config.json").is_file() and not (args.source / "model_index.json").is_file():
        raise CLIError(
            f"{args.source} is a transformer folder; give the whole Wan pipeline folder (model_index.json with "
            "transformer/, vae/, text_encoder/, tokenizer/, scheduler/): omni runs Wan with Wan's own parts"
        )
    start = time.perf_counter()
    index = convert_wan_pipeline(args.source, args.out, fps=args.fps)
    boundary = index["boundary_ratio"]
    what = f"two experts switched at boundary_ratio {boundary}" if boundary is not None else "one transformer"
    print(
        f"wrote {args.out} (video-only OmniPipeline, {what}, {index['default_fps']:g} fps) in "
        f"{time.perf_counter() - start:.1f} s; run: omni generate --model {args.out} --task t2v --prompt ..."
    )


def import_if_built(module_name: str):
    """Import an optional part of omni; None when that module (or its package) does not exist."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise


def register(subparsers) -> None:
    _register_generate(subparsers)
    _register_convert(subparsers)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `omni` parser. Given a command, only that command's module is imported and every other command is a
    stub that carries its help line; without one, every command is complete."""
    parser = ArgumentParser(prog="omni", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    selected = None if command is None else COMMANDS.get(command, ("",))[0]
    registered: set[str] = set()
    for name, (module_name, help) in COMMANDS.items():
        if module_name in registered:
            continue
        if command is not None and module_name != selected:
            subparsers.add_parser(name, help=help)
            continue
        registered.add(module_name)
        module = sys.modules[__name__] if module_name == "omni.cli" else import_if_built(module_name)
        if module is None:
            subparsers.add_parser(name, help=help)
        else:
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else ""
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except (CLIError, ConfigError, ValueError, FileNotFoundError, MemoryError) as error:
        print(f"omni {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"omni {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
