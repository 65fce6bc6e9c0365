"""`omni generate` (a prompt and conditions in, a file out) and `omni convert` (another model's pipeline folder
into an omni pipeline folder)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from omni.cli import (
    COMMANDS,
    MAX_SEED,
    CLIError,
    add_model_arguments,
    camera,
    integer,
    number,
    seconds,
    size,
    text,
)


def register(subparsers) -> None:
    _register_generate(subparsers)
    _register_convert(subparsers)


def _keyframe(text: str) -> tuple[float, Path]:
    """`SECONDS:PATH` -> (seconds, path)."""
    from omni.tasks import MAX_SECONDS

    at, _, path = text.partition(":")
    try:
        value = float(at)
    except ValueError:
        value = math.nan
    if not path or not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"--keyframe takes SECONDS:IMAGE with SECONDS in [0, {MAX_SECONDS:g}] (e.g. 1.5:key.png), "
            f"got {text[:60]!r}"
        )
    return value, Path(path)


def _register_generate(subparsers) -> None:
    from omni.conditioning.camera_presets import CAMERA_PRESETS
    from omni.tasks import OFFERED, TASKS

    tasks = "; ".join(f"{name}: {TASKS[name].summary}" for name in OFFERED)
    p = subparsers.add_parser("generate", help=COMMANDS["generate"][1], description=f"Tasks: {tasks}.")
    p.add_argument("--prompt", required=True, type=text("--prompt"), help="what to generate (text)")
    p.add_argument(
        "--negative-prompt", default="", type=text("--negative-prompt"), help="what to steer away from (text)"
    )
    p.add_argument("--task", default="t2av", choices=OFFERED, help="what to generate from what")
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
    p.add_argument(
        "--start", type=number("--start", 0, 1e6), help="retake: start of the range to regenerate (seconds)"
    )
    p.add_argument(
        "--end", type=number("--end", 0, 1e6), help="retake: end of the range to regenerate (seconds)"
    )
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
        type=camera,
        help=f'a preset ({", ".join(CAMERA_PRESETS)}) or JSON {{"keyframes": [[t, dx, dy, zoom], ...]}}',
    )
    p.add_argument(
        "--seconds",
        type=seconds("--seconds"),
        help="duration (extend: seconds to add; default: the model's or the input's)",
    )
    p.add_argument(
        "--chunk-seconds", type=seconds("--chunk-seconds"), help="extend: longest piece generated at once"
    )
    p.add_argument(
        "--frames",
        type=integer("--frames", 1, 100_000),
        help="exact frame count instead of --seconds: 1 + k times the VAE's temporal factor (Wan: 4, toy: 2)",
    )
    p.add_argument("--fps", type=number("--fps", 1, 120), help="frames per second (default: the model's)")
    p.add_argument("--size", type=size, help="N or WxH in pixels, multiples of 16 (default: the model's)")
    p.add_argument("--steps", type=integer("--steps", 1, 1000), help="denoising steps (default: the model's)")
    p.add_argument(
        "--guidance", type=number("--guidance", 0, 100), help="text guidance scale (default: the model's)"
    )
    p.add_argument(
        "--image-guidance",
        type=number("--image-guidance", 0, 100),
        default=1.0,
        help="guidance of key frames, references, given video",
    )
    p.add_argument(
        "--audio-guidance",
        type=number("--audio-guidance", 0, 100),
        default=1.0,
        help="guidance of given audio",
    )
    p.add_argument(
        "--control-guidance",
        type=number("--control-guidance", 0, 100),
        default=1.0,
        help="guidance of the motion control (--trajectory, --camera)",
    )
    p.add_argument(
        "--guidance-min-sigma",
        type=number("--guidance-min-sigma", 0, 1),
        help="end of the guidance interval: steps below this noise level run once, unguided (default: the "
        "model's)",
    )
    p.add_argument("--scheduler", choices=("unipc", "euler"), help="override the model's sampler")
    p.add_argument(
        "--seed",
        type=integer("--seed", 0, MAX_SEED, "2**63 - 1"),
        default=0,
        help="the same seed and inputs give the same output",
    )
    p.add_argument(
        "--out", type=Path, help="output file (.mp4, .png or .wav; default outputs/<task>-<seed>.<ext>)"
    )
    add_model_arguments(p)
    p.set_defaults(run=run_generate)


def read_conditions(args: argparse.Namespace, frames: int | None = None) -> dict:
    """Pipeline keyword arguments for the condition files named on the command line."""
    from omni import media
    from omni.conditioning.motion import CAMERA_PRESETS, CameraPath, Trajectory
    from omni.media.arrays import check_audio_range
    from omni.tasks import TASKS, tasks_taking

    task = TASKS[args.task]
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
        check_audio_range(audio, f"--audio {args.audio}")
        conditions.update(audio=audio, audio_sample_rate=rate)
    if args.video is not None:
        clip = media.read_video(args.video)
        if not clip.has_video:
            raise CLIError(f"--video {args.video}: the file has no video stream")
        conditions.update(video=clip.frames, video_fps=clip.fps)
        if (
            task.length in ("added", "given") and clip.has_audio and args.audio is None
        ):  # the clip's own sound
            conditions.update(audio=clip.audio, audio_sample_rate=clip.sample_rate)
    if "start" in task.takes:
        conditions.update(start=args.start, end=args.end, modality=args.modality)
    elif args.start is not None or args.end is not None:
        raise CLIError(f"--start / --end go with --task {' or '.join(tasks_taking('start'))}")
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
    if args.control_guidance != 1.0 and "trajectory" not in conditions and "camera" not in conditions:
        raise CLIError(
            f"--control-guidance {args.control_guidance:g} guides the motion control: give --trajectory or "
            "--camera, or drop it"
        )
    return conditions


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
            "control": args.control_guidance,
        },
        guidance_min_sigma=(
            args.guidance_min_sigma
            if args.guidance_min_sigma is not None
            else pipe.config.default_guidance_min_sigma
        ),
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
    from omni.media.output import prepare_output, write_result
    from omni.pipelines.loading import load_model
    from omni.tasks import TASKS, output_suffix

    length = TASKS[args.task].length
    suffix = output_suffix(args.task)
    out = args.out or Path("outputs") / f"{args.task}-{args.seed}{suffix}"
    if out.suffix.lower() != suffix:
        raise CLIError(f"--out {out}: task {args.task} writes a {suffix} file")
    signer = prepare_output(out)
    fps = args.fps or 16.0
    frames = args.frames or (
        round(args.seconds * fps) if args.seconds and length not in ("added", "given") else None
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
        control_guidance_scale=args.control_guidance,
        guidance_min_sigma=args.guidance_min_sigma,
        negative_prompt=args.negative_prompt,
        seed=args.seed,
        chunk_seconds=args.chunk_seconds,
        **conditions,
    )
    start = time.perf_counter()
    what = write_result(out, result, generation_record(loaded, args, result), signer)
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
