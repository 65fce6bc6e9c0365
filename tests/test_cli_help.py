"""`omni --help` is instant and complete: no torch import, every command listed, every flag explained."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from omni.cli import COMMANDS, build_parser

# Runs the CLI in a fresh process and reports which heavy packages it imported.
PROBE = """
import contextlib, io, json, sys
from omni.cli import main
out = io.StringIO()
for argv in {argvs}:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(argv)
        except SystemExit:
            pass
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"torch", "diffusers", "transformers", "numpy", "av"}})
print(json.dumps({{"heavy": heavy, "out": out.getvalue()}}))
"""


def probe(*argvs: list[str]) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", PROBE.format(argvs=list(argvs))], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_help_and_a_mistyped_command_import_no_torch_and_list_every_command():
    result = probe(["--help"], ["genrate", "--prompt", "x"], [])
    assert result["heavy"] == []
    for name in COMMANDS:
        assert f"\n    {name} " in result["out"], name
    assert "invalid choice: 'genrate'" in result["out"]


def test_generate_help_and_its_argument_errors_import_no_torch():
    result = probe(
        ["generate", "--help"], ["generate", "--seconds", "2"], ["generate", "--prompt", "x", "--task", "t3v"]
    )
    assert result["heavy"] == []
    assert "--camera CAMERA" in result["out"] and "pan-left" in result["out"]
    assert "the following arguments are required: --prompt" in result["out"]
    assert "invalid choice: 't3v'" in result["out"]


def subcommand_parsers(parser: argparse.ArgumentParser, prefix: str = "omni"):
    """(command line, parser) for every command and subcommand."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommand_parsers(sub, f"{prefix} {name}")


@pytest.fixture(scope="module")
def full_parser() -> argparse.ArgumentParser:
    return build_parser()


def test_every_command_is_registered_with_the_help_line_omni_help_shows(full_parser):
    (commands,) = [a for a in full_parser._actions if isinstance(a, argparse._SubParsersAction)]
    shown = {a.dest: a.help for a in commands._choices_actions}
    assert shown == {name: help for name, (_, help) in COMMANDS.items()}


def test_every_flag_has_help_and_its_default_shows(full_parser):
    missing = [
        f"{line} {action.option_strings[0]}"
        for line, parser in subcommand_parsers(full_parser)
        for action in parser._actions
        if action.option_strings and action.help is None
    ]
    assert missing == []
    generate = full_parser._subparsers._group_actions[0].choices["generate"].format_help()
    assert "(default: t2av)" in generate and "(default: 0)" in generate  # --task, --seed
