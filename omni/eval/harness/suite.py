"""Benchmark suites: YAML files of items (prompt, task, inputs, requested format, optional ground truth).

A suite is read with `yaml.safe_load` into strict dataclasses: an unknown key, a wrong type or an item that
cannot be generated as written is an error that names the item and the key. Input paths are relative to
the suite file. Every item has one output, `<id>.mp4` (`.png` for t2i, `.wav` for t2a), which is also the
name other systems' outputs are dropped under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from omni import plugins
from omni.config import ConfigError, from_dict, load_yaml
from omni.eval.metrics.compliance import Request, Tolerances
from omni.media import geometry
from omni.tasks import TASKS

# The tasks a suite may hold: those whose one input, if any, is an image, audio or video file. What each
# takes, returns and is written as is read from the task table (omni.tasks).
Task = Literal["t2v", "t2i", "t2a", "t2av", "i2v", "v2a", "a2v"]
ITEM_INPUTS = ("image", "audio", "video")
INPUT_OF_TASK = {
    name: needed[0]
    for name in get_args(Task)
    if (needed := [i for i in TASKS[name].requires if i in ITEM_INPUTS])
}
# A system must return sound for the tasks that are pointless without it.
AUDIO_OUTPUT_TASKS = tuple(t for t in get_args(Task) if TASKS[t].sound)
VIDEO_OUTPUT_TASKS = tuple(t for t in get_args(Task) if TASKS[t].has_video)
# Shots are made one by one from text alone and concatenated: the video tasks that need no input.
SHOT_TASKS = tuple(t for t in VIDEO_OUTPUT_TASKS if not TASKS[t].requires)
ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Suffixes accepted for a system's output, preferred first (omni writes the first).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp3", ".ogg")


@dataclass(frozen=True)
class SuiteItem:
    """One thing to generate.

    Attributes:
        id: the output's file stem (letters, digits, `.`, `_`, `-`), unique in the suite.
        task: t2v t2i t2a t2av i2v v2a a2v.
        prompt: the text prompt; or `shots` instead.
        shots: prompts of consecutive shots (t2v / t2av): generated one by one and concatenated, each
            lasting seconds / len(shots).
        image, audio, video: the input an i2v / a2v / v2a item needs, relative to the suite file.
        seconds: duration of the whole output (None: the input's, or the system's default).
        fps, size: frame rate, and "N" or "WxH" in pixels.
        seed: the generation seed (None: the run's).
        scene: toy-world ground truth (a `SceneSpec` as a mapping): what the output should show.
    """

    id: str
    task: Task
    prompt: str | None = None
    shots: list[str] | None = None
    image: str | None = None
    audio: str | None = None
    video: str | None = None
    seconds: float | None = None
    fps: float | None = None
    size: int | str | None = None
    seed: int | None = None
    scene: dict[str, Any] | None = None

    @property
    def output_suffix(self) -> str:
        return TASKS[self.task].suffix

    @property
    def accepted_suffixes(self) -> tuple[str, ...]:
        return {".png": IMAGE_SUFFIXES, ".wav": AUDIO_SUFFIXES}.get(self.output_suffix, VIDEO_SUFFIXES)

    @property
    def prompts(self) -> list[str]:
        """The prompt of every shot (one for a single-shot item)."""
        return list(self.shots) if self.shots else [self.prompt or ""]

    @property
    def height_width(self) -> tuple[int, int] | None:
        return None if self.size is None else parse_size(self.size, f"item {self.id!r}: size")

    @property
    def input_path(self) -> str | None:
        """The item's input file (as written in the suite), if its task takes one."""
        return getattr(self, INPUT_OF_TASK[self.task]) if self.task in INPUT_OF_TASK else None

    def scene_spec(self) -> Any:
        """The ground-truth scene, validated (None when the item has none)."""
        if self.scene is None:
            return None
        try:
            return scenes().from_dict(self.scene)
        except ValueError as error:
            raise ConfigError(f"item {self.id!r}: scene: {error}") from error

    def request(self) -> Request:
        """What a compliant output must be: the item's duration, frame rate, size and sound."""
        size = self.height_width
        pictured = size is not None and self.output_suffix != ".wav"
        return Request(
            seconds=None if TASKS[self.task].length == "one" else self.seconds,
            fps=self.fps if self.task in VIDEO_OUTPUT_TASKS else None,
            width=size[1] if pictured else None,
            height=size[0] if pictured else None,
            audio=self.task in AUDIO_OUTPUT_TASKS,
        )


@dataclass(frozen=True)
class SuiteDefaults:
    """Values an item takes when it does not set them."""

    seconds: float | None = None
    fps: float | None = None
    size: int | str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Suite:
    """A loaded suite: items with defaults applied, and the folder their input paths are relative to."""

    name: str
    items: list[SuiteItem]
    description: str = ""
    defaults: SuiteDefaults = field(default_factory=SuiteDefaults)
    tolerances: Tolerances = field(default_factory=Tolerances)
    folder: Path = field(default=Path("."), compare=False)
    path: Path | None = field(default=None, compare=False)

    def resolve(self, relative: str) -> Path:
        """An input path of the suite as a path on disk."""
        return (self.folder / relative).resolve()


@dataclass(frozen=True)
class _SuiteFile:
    """The YAML layout of a suite file."""

    name: str
    items: list[SuiteItem]
    description: str = ""
    defaults: SuiteDefaults = field(default_factory=SuiteDefaults)
    tolerances: Tolerances = field(default_factory=Tolerances)


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; errors name the file, the item and the key."""
    path = Path(path)
    try:
        return suite_from_dict(load_yaml(path), path.parent, path.resolve())
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def suite_from_dict(data: dict[str, Any], folder: str | Path = ".", path: Path | None = None) -> Suite:
    """A suite from its mapping (what `load_suite` reads from YAML), inputs relative to `folder`."""
    try:
        raw = from_dict(_SuiteFile, data)
    except ConfigError as error:
        raise ConfigError(_name_item(str(error), data)) from error
    return build_suite(raw, Path(folder).resolve(), path)


def _name_item(message: str, data: Any) -> str:
    """Add the item's id to an error about `items[i]`, so the user finds the item by name."""
    match = re.match(r"items\[(\d+)\]", message)
    items = data.get("items") if isinstance(data, dict) else None
    if match and isinstance(items, list) and int(match[1]) < len(items):
        item = items[int(match[1])]
        if isinstance(item, dict) and "id" in item:
            return f"{match[0]} ({item['id']!r}){message[match.end() :]}"
    return message


def build_suite(raw: _SuiteFile, folder: Path, path: Path | None) -> Suite:
    defaults = raw.defaults
    items, seen = [], set()
    for index, item in enumerate(raw.items):
        item = replace(
            item,
            seconds=item.seconds if item.seconds is not None else defaults.seconds,
            fps=item.fps if item.fps is not None else defaults.fps,
            size=item.size if item.size is not None else defaults.size,
            seed=item.seed if item.seed is not None else defaults.seed,
        )
        check_item(item, index)
        if item.id in seen:
            raise ConfigError(f"items[{index}]: id {item.id!r} is used twice; ids name output files")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ConfigError("a suite needs at least one item")
    if defaults.size is not None:
        parse_size(defaults.size, "defaults.size")
    return Suite(raw.name, items, raw.description, defaults, raw.tolerances, folder, path)


def check_item(item: SuiteItem, index: int) -> None:
    """Refuse an item that cannot be generated as written; the message names the item and the key."""
    where = f"items[{index}] ({item.id!r})"
    if not ITEM_ID.fullmatch(item.id):
        raise ConfigError(f"{where}: id must be letters, digits, '.', '_' or '-' (it names the output file)")
    if (item.prompt is None) == (item.shots is None):
        raise ConfigError(f"{where}: give either prompt or shots, not {'both' if item.prompt else 'neither'}")
    if item.shots is not None:
        if item.task not in SHOT_TASKS:
            raise ConfigError(f"{where}: shots are for tasks {list(SHOT_TASKS)}, not {item.task!r}")
        if not item.shots or not all(isinstance(s, str) and s.strip() for s in item.shots):
            raise ConfigError(f"{where}: shots must be a non-empty list of non-empty prompts")
    for name in ("image", "audio", "video"):
        value = getattr(item, name)
        if value is not None and INPUT_OF_TASK.get(item.task) != name:
            raise ConfigError(f"{where}: task {item.task!r} takes no {name} input")
    needed = INPUT_OF_TASK.get(item.task)
    if needed and getattr(item, needed) is None:
        raise ConfigError(f"{where}: task {item.task!r} needs its {needed} input (key {needed!r})")
    for name in ("seconds", "fps"):
        value = getattr(item, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{where}: {name} must be positive, got {value!r}")
    if item.seed is not None and item.seed < 0:
        raise ConfigError(f"{where}: seed must be >= 0, got {item.seed}")
    if item.size is not None:
        parse_size(item.size, f"{where}: size")
    if item.scene is not None:
        item.scene_spec()


def parse_size(size: int | str, where: str) -> tuple[int, int]:
    """`64`, "64" or "WxH" -> (height, width) in positive pixels (the CLI's --size rule)."""
    try:
        height, width = geometry.parse_size(str(size))
    except ValueError as error:
        raise ConfigError(f"{where}: {str(error).removeprefix('--size ')}") from error
    if width <= 0 or height <= 0:
        raise ConfigError(f"{where}: sizes must be positive, got {size!r}")
    return height, width


def scenes():
    """The kind of ground-truth scene items carry (`from_dict`, `render`, `score`): the toy world's, a plug-in
    (`omni.plugins`), so the harness does not import the toy world."""
    return plugins.load("suite_scene", "toyworld")
