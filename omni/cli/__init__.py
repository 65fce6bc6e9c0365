"""`omni` command line: generate | project | convert | prepare | train | bench | eval | toyworld | verify.

The outer shell of omni: argument parsing and printing only. Each command lives in a module of this package;
nothing in the library imports it."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import signal
import sys
import warnings

from omni.config import ConfigError

# Every command, the module whose `register(subparsers)` adds it, and its line in `omni --help`. Only the module
# of the command being run is imported, so `omni --help` and a mistyped command never import torch.
COMMANDS = {
    "generate": ("omni.cli.generate", "generate video, audio or an image from a prompt and conditions"),
    "project": ("omni.cli.project", "generate a multi-shot project (shot list YAML) into one mp4"),
    "convert": (
        "omni.cli.generate",
        "turn another model's pipeline folder into a runnable omni pipeline folder",
    ),
    "prepare": ("omni.cli.prepare", "pre-encode clips into latent shards for training"),
    "train": ("omni.cli.train", "train omni on latent shards or a rendered stream (one process or torchrun)"),
    "bench": ("omni.cli.bench", "speed benchmarks and the benchmark harness (measured, printed)"),
    "eval": ("omni.cli.eval", "capability metrics against ground truth"),
    "toyworld": ("omni.cli.toyworld", "render procedural audio-visual toy-world clips"),
    "verify": ("omni.cli.verify", "check the content credentials of outputs"),
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
    """omni's parsers (subcommands inherit it): defaults shown in help, usage errors in one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """Usage errors in one line, like every other error of the command line."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2. Commands return None or an exit status."""


MAX_SEED = 2**63 - 1


def size(text: str) -> tuple[int, int]:
    """An argparse type: `64` or `WxH` (e.g. `832x480`) -> (height, width)."""
    from omni.media.geometry import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def number(flag: str, low: float, high: float, *, low_open: bool = False):
    """An argparse type: a finite float in [low, high] (`low_open`: in (low, high]), refused by flag name."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = low < value <= high if low_open else low <= value <= high
        if not math.isfinite(value) or not inside:
            interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"{flag} must be a number in {interval}, got {text[:40]!r}")
        return value

    return parse


def integer(flag: str, low: int, high: int, high_text: str | None = None):
    """An argparse type: an integer in [low, high], refused by flag name."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{flag} must be an integer in [{low}, {high_text or high}], got {text[:40]!r}"
            )
        return value

    return parse


def seconds(flag: str):
    """An argparse type: a duration in (0, MAX_SECONDS] seconds."""

    def parse(text: str) -> float:
        from omni.tasks import MAX_SECONDS

        return number(flag, 0, MAX_SECONDS, low_open=True)(text)

    return parse


def text(flag: str):
    """An argparse type: text that is valid Unicode (a terminal in another encoding passes undecodable bytes)."""

    def parse(value: str) -> str:
        # inputs.check_text makes the same check in the pipeline; importing it here would import torch.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise argparse.ArgumentTypeError(
                f"{flag} is not valid Unicode text (undecodable character at position {error.start}); "
                "set the terminal to UTF-8"
            ) from error
        return value

    return parse


def camera(value: str) -> str:
    """--camera: a preset name or a JSON file of keyframes."""
    from omni.conditioning.camera_presets import check_camera

    try:
        return check_camera(value, "--camera")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="OmniPipeline folder (default: the built-in toy model)")
    parser.add_argument(
        "--preset", help="build a random-weight model from omni/configs/<preset>.yaml instead"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA GPU when present), cpu, cuda, cuda:N")
    parser.add_argument(
        "--dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16"
    )
    parser.add_argument("--attention", help="attention backend (see `omni bench attention --list`)")


def import_if_built(module_name: str):
    """Import an optional part of omni; None when that module (or its package) does not exist."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `omni` parser. Given a command, only that command's module is imported and every other command is a
    stub that carries its help line; without one, every command is complete."""
    parser = ArgumentParser(prog="omni", description=__doc__.split("\n\n")[0])
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
        module = import_if_built(module_name)
        if module is None:
            subparsers.add_parser(name, help=help)
        else:
            module.register(subparsers)
    return parser


# Failures of input, files, memory and arithmetic on given values: one line, exit status 2.
EXPECTED_ERRORS = (CLIError, ConfigError, ValueError, OSError, MemoryError, OverflowError, FloatingPointError)
TRACEBACK_ENV = "OMNI_TRACEBACK"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else ""
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse has printed in one line
        return exit_.code if isinstance(exit_.code, int) else 2
    with warnings.catch_warnings(), _terminate_as_exit():
        warnings.showwarning = _show_warning
        try:
            status = args.run(args)
        except KeyboardInterrupt:
            print(f"omni {args.command}: interrupted", file=sys.stderr)
            return 130
        except RecursionError:
            if os.environ.get(TRACEBACK_ENV):
                raise
            print(f"omni {args.command}: error: an input file is nested too deeply to read", file=sys.stderr)
            return 2
        except EXPECTED_ERRORS as error:
            if os.environ.get(TRACEBACK_ENV):
                raise
            print(f"omni {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return 2
        except Exception as error:
            if os.environ.get(TRACEBACK_ENV):
                raise
            print(
                f"omni {args.command}: unexpected error ({type(error).__name__}: {_one_line(error)}); this is a "
                f"bug in omni: please report it with the command line and the traceback that {TRACEBACK_ENV}=1 "
                "prints",
                file=sys.stderr,
            )
            return 1
    return status or 0


def _one_line(error: BaseException) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= 2000 else message[:2000] + " ..."


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"omni: warning: {_one_line(message)}", file=sys.stderr)


@contextlib.contextmanager
def _terminate_as_exit():
    """Turn SIGTERM into SystemExit while a command runs, so its temporary files are removed as on Ctrl-C."""

    def exit_(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, exit_)
    except ValueError:  # not the main thread: signals stay as they are
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
