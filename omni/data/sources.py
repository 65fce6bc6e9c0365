"""Where `omni prepare` takes clips from: a manifest of files, an iterable of decoded clips, a named source.

A source yields `PendingClip`s in a fixed order; each is decoded only when `load()` is called, so a resumed
run passes over the clips of finished shards without decoding them again. `load()` raises `ClipRejected`
for a clip that cannot be used (missing, corrupt, too short); `prepare` then skips and counts it.

Named sources are plug-ins (`omni.plugins`, group "clip_source"): "manifest" is built in here, "toyworld"
comes from the toy world, which renders its clips straight to arrays; `register_source` adds more.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from omni import plugins
from omni.data.clips import ClipFormat, ClipRejected, SourceClip, probe_fps
from omni.data.manifest import ManifestEntry, read_manifest
from omni.media import MediaError, read_audio, read_video


@dataclass(frozen=True)
class PendingClip:
    """A clip of a source, not decoded yet.

    Attributes:
        clip_id: unique within the source.
        origin: where it comes from (file paths), for logs and the list of skipped clips.
        load: decodes it; raises `ClipRejected` when the clip cannot be used.
    """

    clip_id: str
    origin: str
    load: Callable[[], SourceClip]


@dataclass(frozen=True)
class ClipSource:
    """An ordered collection of clips to prepare.

    Attributes:
        identity: JSON-serialisable description (kind, path and content hash, seed...) recorded in the index;
            a resumed run refuses a source whose identity changed, since its shards would no longer match.
        pending: returns a fresh iterator over the clips, always in the same order.
        count: the number of clips when known (for the progress bar).
    """

    identity: dict[str, Any]
    pending: Callable[[], Iterator[PendingClip]] = field(repr=False)
    count: int | None = None

    def __iter__(self) -> Iterator[PendingClip]:
        return self.pending()


# ------------------------------------------------------------------------------------------- manifest


def manifest_source(path: str | os.PathLike[str], fmt: ClipFormat) -> ClipSource:
    """The clips of a JSONL manifest (parsed strictly now; files are opened only when loaded)."""
    path = Path(path)
    entries = read_manifest(path)
    identity = {
        "kind": "manifest",
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "clips": len(entries),
    }

    def pending() -> Iterator[PendingClip]:
        for entry in entries:
            origin = str(entry.video) if entry.audio is None else f"{entry.video} + {entry.audio}"
            yield PendingClip(
                f"{path.name}:{entry.line}", origin, lambda entry=entry: load_entry(entry, fmt, path.name)
            )

    return ClipSource(identity, pending, len(entries))


def _manifest_factory(fmt: ClipFormat, *, path: str | os.PathLike[str]) -> ClipSource:
    return manifest_source(path, fmt)


def load_entry(entry: ManifestEntry, fmt: ClipFormat, manifest_name: str = "manifest") -> SourceClip:
    """Decode a manifest entry: no more frames than the longest bucket needs, audio from the separate file
    when one is named, else from the video's own track (None when it has none).

    Raises:
        ClipRejected: the video or audio file is missing ("missing_file"), cannot be decoded ("unreadable"),
            or holds no video ("no_video").
    """
    try:
        source_fps = probe_fps(entry.video)
        if source_fps is None:
            raise ClipRejected("no_video", f"{entry.video}: has no video stream")
        clip = read_video(entry.video, max_frames=fmt.source_frames_needed(source_fps))
        audio, sample_rate, audio_origin = clip.audio, clip.sample_rate, "track"
        if entry.audio is not None:
            audio, sample_rate = read_audio(entry.audio)
            audio_origin = "file"
    except FileNotFoundError as error:
        raise ClipRejected("missing_file", f"{error.filename}: no such file") from error
    except (MediaError, OSError, av.FFmpegError) as error:
        raise ClipRejected("unreadable", str(error)) from error
    if audio is None:
        audio_origin = "none"
    return SourceClip(
        clip_id=f"{manifest_name}:{entry.line}",
        frames=clip.frames,
        fps=clip.fps,
        audio=audio,
        sample_rate=sample_rate,
        caption=entry.caption,
        origin=str(entry.video),
        audio_origin=audio_origin,
    )


# ------------------------------------------------------------------------------------ decoded clips


# A clip as a plain tuple:
# (clip_id, frames (F, H, W, 3) uint8, fps, audio (C, N) float32 or None, sample_rate or None, caption).
ClipTuple = tuple


def iterable_source(
    clips: Callable[[], Iterable[SourceClip | ClipTuple]], identity: dict[str, Any], count: int | None = None
) -> ClipSource:
    """A source over already decoded clips, e.g. rendered in memory.

    `clips` returns the clips in a fixed order (called again for each run, so it must give the same clips
    each time); each is a `SourceClip` or a tuple `(clip_id, frames, fps, audio, sample_rate, caption)`.
    `identity` must change whenever the clips do (e.g. include the seed).
    """
    if not isinstance(identity, dict) or "kind" not in identity:
        raise ValueError(f"identity must be a dict with a 'kind' key, got {identity!r}")

    def pending() -> Iterator[PendingClip]:
        for position, item in enumerate(clips()):
            clip = _as_source_clip(item, position)
            yield PendingClip(clip.clip_id, clip.origin or identity["kind"], lambda clip=clip: clip)

    return ClipSource(identity, pending, count)


def _as_source_clip(item: SourceClip | ClipTuple, position: int) -> SourceClip:
    if isinstance(item, SourceClip):
        return item
    if not isinstance(item, tuple) or len(item) != 6:
        raise ValueError(
            f"clip {position}: expected a SourceClip or a tuple (clip_id, frames, fps, audio, sample_rate, "
            f"caption), got {type(item).__name__}"
        )
    clip_id, frames, fps, audio, sample_rate, caption = item
    return SourceClip(
        clip_id, frames, fps, audio, sample_rate, caption, audio_origin="none" if audio is None else "track"
    )


# -------------------------------------------------------------------------------------- named sources

SourceFactory = Callable[..., ClipSource]
SOURCE_PLUGINS = "clip_source"  # the plug-in group of named sources (omni.plugins)


def register_source(name: str, factory: SourceFactory) -> None:
    """Make `build_source(name, fmt, **options)` call `factory(fmt, **options)`; a name is registered once."""
    plugins.register(SOURCE_PLUGINS, name, factory)


def source_names() -> list[str]:
    return plugins.names(SOURCE_PLUGINS)


def build_source(name: str, fmt: ClipFormat, **options: Any) -> ClipSource:
    """The registered source `name`, built for `fmt` with its `options` (e.g. count and seed)."""
    if name not in source_names():
        raise ValueError(f"unknown clip source {name!r}; registered sources are {source_names()}")
    factory = plugins.load(SOURCE_PLUGINS, name)
    parameters = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        allowed = [key for key, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"clip source {name!r} has no option(s) {unknown}; its options are {allowed}")
    return factory(fmt, **options)


register_source("manifest", _manifest_factory)
