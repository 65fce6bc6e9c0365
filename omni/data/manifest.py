"""A manifest of real clips: one JSON object per line, `{"video": ..., "caption": ..., "audio": ...}`.

`video` is an mp4 (or any file PyAV reads) and `caption` its text; `audio` optionally names a separate
sound file to use instead of the video's own track. Relative paths are relative to the manifest's folder.
Parsing is strict: a malformed line stops the run with an error that names the line and the key, because a
silently dropped caption or a typo'd key would train on different data than the user meant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omni.media import atomic_output

REQUIRED_KEYS = ("video", "caption")
OPTIONAL_KEYS = ("audio",)
ALLOWED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the line and the key."""


@dataclass(frozen=True)
class ManifestEntry:
    """One clip of a manifest.

    Attributes:
        video: the video file, absolute (relative paths are resolved against the manifest's folder).
        caption: the clip's text, non-empty.
        audio: a separate sound file to use instead of the video's own track, or None.
        line: the 1-based line of the manifest it came from (0 for entries built in code).
    """

    video: Path
    caption: str
    audio: Path | None = None
    line: int = 0


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestEntry]:
    """Parse a JSONL manifest; blank lines are allowed, anything else malformed raises `ManifestError`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ManifestError: a line is not a JSON object, has an unknown key, lacks `video` or `caption`, has a
            value of the wrong type, or the manifest holds no clips at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    folder = path.resolve().parent
    entries = []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if text.strip():
                entries.append(_parse_line(text, f"{path}:{number}", folder, number))
    if not entries:
        raise ManifestError(f"{path}: holds no clips (expected one JSON object per line)")
    return entries


def _parse_line(text: str, where: str, folder: Path, number: int) -> ManifestEntry:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from error
    except RecursionError as error:
        raise ManifestError(f"{where}: nested too deeply") from error
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, found {type(record).__name__}")
    unknown = sorted(set(record) - set(ALLOWED_KEYS))
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {unknown}; allowed keys are {list(ALLOWED_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in record:
            raise ManifestError(f"{where}: missing required key {key!r}")
    for key, value in record.items():
        if not isinstance(value, str):
            raise ManifestError(f"{where}: {key!r} must be a string, got {type(value).__name__} {value!r}")
        if not value.strip():
            raise ManifestError(f"{where}: {key!r} must not be empty")
    audio = record.get("audio")
    return ManifestEntry(
        video=folder / record["video"],
        caption=record["caption"],
        audio=None if audio is None else folder / audio,
        line=number,
    )


def write_manifest(path: str | os.PathLike[str], entries: Iterable[ManifestEntry]) -> Path:
    """Write `entries` as a JSONL manifest (atomically); paths inside the manifest's folder are written
    relative to it, so the folder can be moved as a whole. Returns `path`."""
    path = Path(path)
    folder = path.resolve().parent
    lines = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, ManifestEntry):
            raise TypeError(f"entry {index} must be a ManifestEntry, got {type(entry).__name__}")
        if not entry.caption.strip():
            raise ManifestError(f"entry {index} ({entry.video}): the caption must not be empty")
        record = {"video": _relative(entry.video, folder), "caption": entry.caption}
        if entry.audio is not None:
            record["audio"] = _relative(entry.audio, folder)
        lines.append(json.dumps(record, ensure_ascii=False))
    if not lines:
        raise ManifestError(f"{path}: a manifest needs at least one entry")
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _relative(file: Path, folder: Path) -> str:
    """`file` relative to `folder` when it lies inside it, else absolute (POSIX separators either way)."""
    file = Path(file).resolve()
    try:
        return file.relative_to(folder).as_posix()
    except ValueError:
        return file.as_posix()
