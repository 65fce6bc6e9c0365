"""Atomic file output: a reader never sees a half-written file, and a failed write leaves no trace."""

from __future__ import annotations

import json
import os
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
    exception, KeyboardInterrupt included, deletes it and leaves an existing `path` untouched.
    Parent directories are created. The data is fsynced before the rename, so a crash right after
    cannot leave an empty file at `path`. `keep_mode` gives the new file the permissions of the one it
    replaces (rewriting a file in place).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        if keep_mode and path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
