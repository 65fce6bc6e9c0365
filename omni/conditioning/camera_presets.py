"""Camera motion presets by name, free of torch so that the CLI can offer them before loading a model."""

CAMERA_PRESETS = ("static", "pan-left", "pan-right", "pan-up", "pan-down", "zoom-in", "zoom-out")
