"""The task names and their output files, free of torch so that the CLI can offer them before loading a model."""

VIDEO_TASKS = ("t2v", "t2av", "i2v", "a2v", "v2a", "extend", "retake")
AUDIO_TASKS = ("t2a", "t2av", "i2v", "a2v", "v2a", "extend", "retake")
TASKS = ("t2v", "t2i", "t2a", "t2av", "i2v", "v2a", "a2v", "extend", "retake")
MAX_SECONDS = 120.0  # the longest duration a request may ask for (and a key frame's latest time)


def output_suffix(task: str) -> str:
    """The file a task's output is written as: png for an image, wav for sound alone, mp4 otherwise."""
    return {"t2i": ".png", "t2a": ".wav"}.get(task, ".mp4")
