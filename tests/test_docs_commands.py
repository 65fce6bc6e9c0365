"""Every command in README.md, BENCHMARKS.md and docs/ runs as written from the repository root after
`scripts/setup.sh`: its program exists and its flags parse (nothing is generated).

Each command runs in this process with argparse stopped right after parsing; Python snippets given with
`python -c` or a here-document are compiled.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

from omni.cli import main as omni_main

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [REPO / "README.md", REPO / "BENCHMARKS.md", REPO / "kernels" / "README.md", *REPO.glob("docs/*.md")]
)
SHELL = ("bash", "sh")
BUILTINS = ("echo", "export", "cd", "mkdir")
SEPARATORS = ("&&", "||", ";", "|", "&")


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(), re.S | re.M)


def shell_commands(block: str) -> list[list[str]]:
    """Commands (as argv lists) of a shell block: quotes spanning lines, continuations and here-documents kept."""
    commands, pending, heredoc = [], "", None
    for line in block.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc[0]:
                commands[-1].append("<<" + "\n".join(heredoc[1]))
                heredoc = None
            else:
                heredoc[1].append(line)
            continue
        pending += line + "\n"
        try:
            lexer = shlex.shlex(pending.replace("\\\n", " "), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:  # a quote continues on the next line
            continue
        if pending.rstrip().endswith("\\"):
            continue
        pending = ""
        current: list[str] = []
        for i, token in enumerate(tokens):
            if token in SEPARATORS:
                commands.append(current)
                current = []
            elif token in (">", ">>", "<") or (i and tokens[i - 1] in (">", ">>", "<")):
                continue  # a redirection and its file
            elif token == "<<":
                heredoc = (tokens[i + 1], [])
                break
            else:
                current.append(token)
        if current:
            commands.append(current)
    return [c for c in commands if c]


COMMANDS = [
    pytest.param(path, argv, id=f"{path.relative_to(REPO)}: {' '.join(argv)[:80]}")
    for path in DOCS
    for lang, block in fenced_blocks(path)
    if lang in SHELL
    for argv in shell_commands(block)
]


class Parsed(Exception):
    """Raised in place of running a command once argparse accepted its arguments."""


@pytest.fixture
def stop_after_parsing(monkeypatch):
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)


def check_python(args: list[str], monkeypatch) -> None:
    """`.venv/bin/python [-m MODULE | SCRIPT | -c CODE | -] ARGS`."""
    if args[0] == "-c":
        compile(args[1], "<python -c>", "exec")
        return
    if args[0] == "-":
        assert args[1].startswith("<<"), "python - reads a here-document"
        compile(args[1][2:], "<here-document>", "exec")
        return
    if args[0] == "-m":
        module, rest = args[1], args[2:]
        if module == "pytest":
            assert all((REPO / a).exists() for a in rest if not a.startswith("-")), rest
            return
        monkeypatch.setattr(sys, "argv", [module, *rest])
        with pytest.raises(Parsed):
            runpy.run_module(module, run_name="__main__", alter_sys=False)
        return
    script = REPO / args[0]
    assert script.is_file(), f"{args[0]} does not exist"
    assert "argparse" in script.read_text(), (
        f"{args[0]}: only scripts with an argparse command line are checked"
    )
    monkeypatch.setattr(sys, "argv", [str(script), *args[1:]])
    with pytest.raises(Parsed):
        runpy.run_path(str(script), run_name="__main__")


def check(argv: list[str], monkeypatch) -> None:
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):  # VAR=value prefixes
        argv = argv[1:]
    program, args = argv[0], argv[1:]
    if program == "/usr/bin/time":
        return check(args[2:] if args[:1] == ["-f"] else args, monkeypatch)
    if program == "eval":
        inner = re.fullmatch(r"\$\((.*)\)", args[0], re.S)
        assert inner, f"eval of {args[0]!r}"
        return check(shlex.split(inner[1]), monkeypatch)
    if program in BUILTINS:
        return
    if program.startswith("scripts/"):
        assert os.access(REPO / program, os.X_OK), f"{program} is not an executable script"
        return
    assert program in (".venv/bin/omni", ".venv/bin/python", ".venv/bin/torchrun"), (
        f"{program}: write .venv/bin/{program} (the venv scripts/setup.sh made is not activated)"
    )
    if program == ".venv/bin/omni":
        with pytest.raises(Parsed):
            omni_main(args)
    elif program == ".venv/bin/python":
        check_python(args, monkeypatch)
    else:
        module = args.index("-m")
        check_python(args[module:], monkeypatch)


@pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package:RuntimeWarning")
@pytest.mark.parametrize(("path", "argv"), COMMANDS)
def test_documented_command_parses(path, argv, stop_after_parsing, monkeypatch):
    monkeypatch.chdir(REPO)
    check(argv, monkeypatch)


def test_every_fenced_block_names_its_language_and_shell_blocks_were_found():
    untagged = [str(p.relative_to(REPO)) for p in DOCS for lang, _ in fenced_blocks(p) if not lang]
    assert untagged == []
    assert len(COMMANDS) > 50
