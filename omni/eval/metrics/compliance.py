"""Does an output match its request: duration, frame rate, frame size and sound, within stated tolerances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    """What an item asked for; None where it asked nothing (an image has no duration nor frame rate)."""

    seconds: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    audio: bool = False  # the output must carry sound


@dataclass(frozen=True)
class Tolerances:
    """How far an output may stray from its request and still comply.

    Attributes:
        duration_fraction: relative duration error allowed; at least one frame is always allowed.
        fps_fraction: relative frame-rate error allowed.
        size_pixels: allowed difference of width and of height, in pixels (0: exact).
    """

    duration_fraction: float = 0.05
    fps_fraction: float = 0.01
    size_pixels: int = 0

    def __post_init__(self) -> None:
        for name in ("duration_fraction", "fps_fraction", "size_pixels"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"tolerance {name} must be >= 0, got {value!r}")


def check_compliance(
    request: Request,
    *,
    seconds: float | None,
    fps: float | None,
    width: int | None,
    height: int | None,
    has_audio: bool,
    tolerances: Tolerances = Tolerances(),
) -> dict[str, Any]:
    """Compare an output's measured properties with `request`.

    Returns the measured values, one `<what>_ok` flag per requested property (None where nothing was
    asked) and `compliant`: every requested property within tolerance.
    """
    result: dict[str, Any] = {"seconds": seconds, "fps": fps, "width": width, "height": height}
    result["duration_ok"] = None
    if request.seconds is not None:
        frame = 1 / (fps or request.fps) if (fps or request.fps) else 0.0
        allowed = max(tolerances.duration_fraction * request.seconds, frame)
        result["duration_ok"] = seconds is not None and abs(seconds - request.seconds) <= allowed + 1e-9
    result["fps_ok"] = None
    if request.fps is not None:
        result["fps_ok"] = fps is not None and abs(fps - request.fps) <= tolerances.fps_fraction * request.fps
    result["size_ok"] = None
    if request.width is not None and request.height is not None:
        result["size_ok"] = (
            width is not None
            and height is not None
            and abs(width - request.width) <= tolerances.size_pixels
            and abs(height - request.height) <= tolerances.size_pixels
        )
    result["audio_ok"] = has_audio if request.audio else None
    checks = [result[k] for k in ("duration_ok", "fps_ok", "size_ok", "audio_ok") if result[k] is not None]
    result["compliant"] = all(checks)
    return result
