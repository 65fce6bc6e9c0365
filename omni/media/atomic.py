"""Atomic file output: a reader never sees a half-written file, and a failed write leaves no trace."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_output(path: str | os.PathLike[str], keep_mode: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success move it onto `path`, on failure delete it.

    The temporary file sits in the same directory (so `os.replace` is an atomic rename on one
    filesystem) and keeps the suffix of `path` (writers such as PyAV and Pillow pick the format by
    it). It is not created here: the writer creates it with the usual permissions (umask). Any
    exception, KeyboardInterrupt included, deletes it and leaves an existing `path` untouched; a temporary
    file orphaned by a killed process (SIGKILL) is removed by the next write into the same directory.
    Parent directories are created. The data is fsynced before the rename, so a crash right after
    cannot leave an empty file at `path`. `keep_mode` gives the new file the permissions of the one it
    replaces (rewriting a file in place).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    tmp = temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        if keep_mode and path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# `.<stem>.omni<pid>-<12 hex>.tmp<suffix>`: the writing process's id tells a live temporary from an orphan.
_TEMPORARY = re.compile(r"\..*\.omni(?P<pid>\d+)-[0-9a-f]{12}\.tmp(\.[^.]*)?")


class OutputPathError(ValueError):
    """An output path that cannot be written: a directory, a read-only place, a missing permission."""


def temporary_name(path: Path) -> Path:
    """A fresh temporary path next to `path`, in the naming `remove_stale_temporaries` recognises."""
    return path.with_name(f".{path.stem}.omni{os.getpid()}-{secrets.token_hex(6)}.tmp{path.suffix}")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files of `atomic_output` in `folder` whose writing process no longer runs."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False) or _process_alive(int(match["pid"])):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # another process cleaned it first, or no permission: not ours to insist on
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # a live process of another user; an absurd id is left alone too
    return True


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that `atomic_output(path)` will be able to write `path`: it is not a
    directory, its folder exists or can be created, and a temporary file can be created there."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise OutputPathError(f"{path}: the output must be a file name, not a folder")
    if path.is_dir():
        raise OutputPathError(f"{path} is a directory; give a file name inside it")
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise OutputPathError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(path)
        with open(probe, "xb"):
            pass
        probe.unlink()
    except OSError as error:
        raise OutputPathError(f"cannot write {path}: {error.strerror or error}") from error
    remove_stale_temporaries(path.parent)
    return path


def _fsync(path: Path) -> None:
    """Flush `path`'s data to disk; `os.replace` alone only orders the metadata."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` to `path` atomically (temp + rename), so a kill never leaves half a file."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
