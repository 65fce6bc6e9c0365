"""Camera motion presets by name, free of torch so that the CLI can offer them before loading a model."""

CAMERA_PRESETS = ("static", "pan-left", "pan-right", "pan-up", "pan-down", "zoom-in", "zoom-out")


def check_camera(camera: str, what: str = "camera") -> str:
    """A camera is a preset name or the path of a JSON file of keyframes."""
    if camera not in CAMERA_PRESETS and not camera.lower().endswith(".json"):
        raise ValueError(
            f"{what} {camera[:40]!r} is neither a preset ({', '.join(CAMERA_PRESETS)}) nor a .json file"
        )
    return camera
