"""`omni verify FILE [FILE...] [--trust-anchors PEM] [--json]`: check the content credentials of outputs.

Prints one line per file. Exit status: 0 when every file is "valid"; 1 when any is "tampered",
"untrusted" or "none"; 2 when a file or the trust anchors cannot be read (or the arguments are wrong).
Also runs as `python -m omni.cli.verify FILE ...`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omni.cli import COMMANDS
from omni.config import to_dict
from omni.media.provenance import ProvenanceError, VerificationResult, read_trust_anchors, verify_file

EXIT_ALL_VALID = 0
EXIT_NOT_VALID = 1
EXIT_ERROR = 2

_DESCRIPTION = (
    "Check the C2PA content credentials of media files. Exit status: 0 if all are valid, "
    "1 if any is tampered, untrusted or unsigned, 2 if a file or the trust anchors cannot be read."
)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `verify` command to the `omni` CLI; `args.run(args)` then runs it and returns the exit status."""
    parser = subparsers.add_parser("verify", help=COMMANDS["verify"][1], description=_DESCRIPTION)
    _add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omni.cli.verify", description=_DESCRIPTION)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.run(args)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="mp4, png, wav, jpeg, ...")
    parser.add_argument(
        "--trust-anchors",
        type=Path,
        metavar="PEM",
        help="root certificate(s) to trust; without them no file can be valid, only untrusted",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Verify `args.files` and print one line each; return the exit status described in the module docstring."""
    if args.trust_anchors is not None:
        try:
            read_trust_anchors(args.trust_anchors)
        except ProvenanceError as error:
            print(f"omni verify: error: {error}", file=sys.stderr)
            return EXIT_ERROR
    exit_status = EXIT_ALL_VALID
    for path in args.files:
        try:
            result = verify_file(path, args.trust_anchors)
        except ProvenanceError as error:
            print(_format_error(path, str(error), args.json))
            exit_status = EXIT_ERROR
            continue
        print(_format_json(result) if args.json else _format_text(result))
        if result.status != "valid" and exit_status == EXIT_ALL_VALID:
            exit_status = EXIT_NOT_VALID
    return exit_status


def _format_text(result: VerificationResult) -> str:
    parts = [f"{result.path}: {result.status} - {result.reason}"]
    if result.signer:
        parts.append(f"signer {result.signer}")
    if result.record is not None:
        record = result.record
        parts.append(f"model={record.model} task={record.task} seed={record.seed}")
    return " | ".join(parts)


def _format_json(result: VerificationResult) -> str:
    return json.dumps(
        {
            "path": str(result.path),
            "status": result.status,
            "reason": result.reason,
            "signer": result.signer,
            "claim_generator": result.claim_generator,
            "record": None if result.record is None else to_dict(result.record),
            "codes": list(result.codes),
        }
    )


def _format_error(path: Path, message: str, as_json: bool) -> str:
    if as_json:
        return json.dumps({"path": str(path), "status": "error", "reason": message})
    return f"{path}: error - {message}"


if __name__ == "__main__":
    sys.exit(main())
