"""Every task, declared once: what it generates, which latent frames are given clean, which inputs it takes
and needs, and the file its output is written as.

Training draws each sample's clean frames from this table (`omni.conditioning.masks.sample_task_mask`), the
pipeline checks a request's inputs and plans its streams from it (`OmniPipeline`, `omni.pipelines.tasks`),
and `omni generate` offers its names. Free of torch, so the command line lists tasks before loading a model.
Adding a task is one entry in `TASKS` plus its tests (docs/architecture.md, "Adding a task").
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SECONDS = 120.0  # the longest duration a request may ask for (and a key frame's latest time)

STREAMS = ("video", "audio", "image", "reference")
# What is clean in a stream, as a function of its latent frame count, frame times and the task's parameters
# (omni.conditioning.masks.clean_frames): nothing, everything, the first frame, the first and last frames, the
# frames up to `context_seconds` (extension), everything outside [start, end] (a retake of that stream).
CLEAN_RULES = ("none", "all", "first", "first_last", "context", "outside_range")
# Inputs a request may carry, and how an error names a missing one.
INPUTS = {
    "image": "an image",
    "last_image": "a last image",
    "key_frames": "key frames",
    "references": "reference images",
    "audio": "an audio track",
    "video": "a video",
    "start": "start and end times",
    "trajectory": "a trajectory",
    "camera": "a camera path",
}
# Condition groups: the clean tokens of a stream belong to one, which training drops as a whole (the recipe's
# dropout_<group>) and guidance scales as a whole (guidance_scale for text, image_ / audio_guidance_scale).
CONDITION_OF_STREAM = {"video": "image", "image": "image", "reference": "image", "audio": "audio"}


@dataclass(frozen=True)
class Task:
    """One task.

    streams: stream -> clean rule (`CLEAN_RULES`): the streams a sample of this task holds and what of each is
        given. Video, audio and image streams are generated where not clean and returned; a stream that is
        clean everywhere ("all") is returned exactly as given, and so is a retake's clip outside its range.
        A video-only model runs a task's video alone. A reference is an image outside the clip.
    takes / requires: the inputs (`INPUTS`) it accepts and those it cannot run without.
    sound: pointless without sound, so a video-only model refuses it.
    parameters: what the clean rules read besides lengths: "context" (extension: seconds of given context),
        "range" (retake: start, end and which streams are redone); training draws them, a request gives them.
    length: where the output's length comes from: "asked" (seconds or num_frames, else the given media's or
        the model's default), "one" (a single image), "added" (the given clip plus the seconds asked for, made
        chunk by chunk) or "given" (the given clip's, exactly).
    trained / offered: drawn by training; offered by the pipeline and `omni generate --task`.
    suffix: the file the output is written as: .png for an image, .wav for sound alone, .mp4 otherwise.
    """

    name: str
    summary: str
    streams: dict[str, str]
    takes: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    sound: bool = False
    parameters: str | None = None
    length: str = "asked"
    trained: bool = True
    offered: bool = True
    suffix: str = field(init=False)

    def __post_init__(self) -> None:
        if set(self.streams) - set(STREAMS) or set(self.streams.values()) - set(CLEAN_RULES):
            raise ValueError(
                f"task {self.name}: streams must map {STREAMS} to {CLEAN_RULES}, got {self.streams}"
            )
        if set(self.takes) - set(INPUTS) or not set(self.requires) <= set(self.takes):
            raise ValueError(
                f"task {self.name}: takes must be inputs of {list(INPUTS)}, requires a part of takes"
            )
        if self.length not in ("asked", "one", "added", "given"):
            raise ValueError(
                f"task {self.name}: length must be asked, one, added or given, got {self.length!r}"
            )
        made = set(self.streams) - {"reference"}
        suffix = ".png" if made == {"image"} else ".wav" if made == {"audio"} else ".mp4"
        object.__setattr__(self, "suffix", suffix)

    @property
    def has_video(self) -> bool:
        return "video" in self.streams

    @property
    def has_audio(self) -> bool:
        return "audio" in self.streams


MOTION = ("trajectory", "camera")
VIDEO_INPUTS = ("last_image", "key_frames", "references", *MOTION)

_TASKS = (
    Task("t2v", "video from text", {"video": "none"}, takes=VIDEO_INPUTS),
    Task("t2i", "an image from text", {"image": "none"}, takes=("references",), length="one"),
    Task("t2a", "sound from text", {"audio": "none"}, sound=True),
    Task(
        "t2av",
        "video with sound from text",
        {"video": "none", "audio": "none"},
        takes=VIDEO_INPUTS,
        sound=True,
    ),
    Task(
        "i2v",
        "video (with sound) that starts from an image",
        {"video": "first", "audio": "none"},
        takes=("image", *VIDEO_INPUTS),
        requires=("image",),
    ),
    Task(
        "v2a",
        "sound for a given video",
        {"video": "all", "audio": "none"},
        takes=("video",),
        requires=("video",),
        sound=True,
    ),
    Task(
        "a2v",
        "video driven by a given audio track",
        {"video": "none", "audio": "all"},
        takes=("audio", "references", *MOTION),
        requires=("audio",),
        sound=True,
    ),
    Task(
        "extend",
        "a given clip continued",
        {"video": "context", "audio": "context"},
        takes=("video", "audio", "references"),
        requires=("video",),
        parameters="context",
        length="added",
    ),
    Task(
        "retake",
        "a time range of a given clip redone",
        {"video": "outside_range", "audio": "outside_range"},
        takes=("video", "audio", "start"),
        requires=("video", "start"),
        parameters="range",
        length="given",
    ),
    Task(
        "r2i",
        "an image of a referenced subject",
        {"image": "none", "reference": "all"},
        takes=("references",),
        requires=("references",),
        length="one",
        trained=False,  # learned from its parts: t2i draws images, ref keeps a referenced subject
    ),
    Task(
        "flf",
        "video between a first and a last frame",
        {"video": "first_last", "audio": "none"},
        offered=False,
    ),
    Task(
        "ref",
        "video with sound keeping a referenced subject",
        {"video": "none", "audio": "none", "reference": "all"},
        offered=False,
    ),
)
TASKS: dict[str, Task] = {task.name: task for task in _TASKS}
OFFERED = tuple(t.name for t in _TASKS if t.offered)
TRAINED = tuple(t.name for t in _TASKS if t.trained)


def get_task(name: str, offered: bool = True) -> Task:
    """The task `name`; a ValueError names the tasks there are."""
    if offered and name not in OFFERED:
        raise ValueError(f"unknown task {name!r}; choose one of {list(OFFERED)}")
    if not offered and name not in TRAINED:
        raise ValueError(f"unknown training task {name!r}; choose from {list(TRAINED)}")
    return TASKS[name]


def output_suffix(task: str) -> str:
    """The file a task's output is written as: png for an image, wav for sound alone, mp4 otherwise."""
    return TASKS[task].suffix


def tasks_taking(input_name: str) -> tuple[str, ...]:
    """The offered tasks that accept `input_name`."""
    return tuple(name for name in OFFERED if input_name in TASKS[name].takes)
