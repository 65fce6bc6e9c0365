"""What a toy-world clip contains: the vocabulary (shapes, colours, motions, rooms) and the scene specs.

A `SceneSpec` fully determines a clip: rendering it twice gives identical frames, audio, caption and
ground truth. Coordinates are pixels with x to the right and y down; pixel (row i, column j) covers
[j, j + 1) x [i, i + 1), so its centre is (j + 0.5, i + 0.5). Positions and velocities are given in
world coordinates, which equal the view's coordinates when the camera sits in the middle of its pan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omni import config

SHAPES = ("circle", "square", "triangle")
# Saturated colours at hues 60 degrees apart (red 0, yellow 60, ... magenta 300), so they segment cleanly
# against the low-saturation rooms and survive chroma subsampling.
COLORS = ("red", "yellow", "green", "cyan", "blue", "magenta")
RGB_OF_COLOR = {
    "red": (225, 35, 35),
    "yellow": (225, 225, 35),
    "green": (35, 205, 35),
    "cyan": (35, 215, 215),
    "blue": (45, 45, 235),
    "magenta": (215, 35, 215),
}
HUE_OF_COLOR = {"red": 0.0, "yellow": 60.0, "green": 120.0, "cyan": 180.0, "blue": 240.0, "magenta": 300.0}
# C-major pentatonic notes E4 G4 A4 C5 E5 G5 (2 to 4 semitones apart), rising around the colour wheel.
PITCH_OF_COLOR = {
    "red": 329.63,
    "yellow": 392.00,
    "green": 440.00,
    "cyan": 523.25,
    "blue": 659.26,
    "magenta": 783.99,
}
SIZES = ("small", "large")
# Object radius as a fraction of the frame's shorter side: 10 and 14 px in a 64 x 64 frame. Shapes must
# differ at the model's token size (16 px): at radius 6 a square differs from a circle by 31 px of corners,
# at 14 by 168 px, and a model trained on a few hundred thousand clips learns what it can see.
RADIUS_FRACTION_OF_SIZE = {"small": 10 / 64, "large": 14 / 64}
MOTIONS = ("still", "horizontal", "vertical", "diagonal", "orbit", "trajectory")
BOUNCING_MOTIONS = ("horizontal", "vertical", "diagonal")
# Low-saturation rooms (chroma <= 32 of 255), so every saturated object stands out by colour.
ROOMS = ("grey", "dark", "white", "sand", "slate")
RGB_OF_ROOM = {
    "grey": (128, 128, 128),
    "dark": (46, 46, 50),
    "white": (218, 218, 212),
    "sand": (182, 170, 150),
    "slate": (96, 106, 120),
}
BACKDROPS = ("flat", "gradient", "texture")
AMBIENTS = ("hum", "noise")
WALLS = ("left", "right", "top", "bottom")


def _check_choice(what: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; choose one of {list(allowed)}")


def _finite(what: str, values: tuple[float, ...]) -> None:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be finite numbers, got {values!r}")


@dataclass(frozen=True)
class ObjectSpec:
    """One object: how it looks, sounds (through shape and colour) and moves.

    Attributes:
        shape: one of SHAPES; also the timbre of its beep.
        color: one of COLORS; also the pitch of its beep (PITCH_OF_COLOR).
        size: one of SIZES; the radius is RADIUS_FRACTION_OF_SIZE[size] x the frame's shorter side. A
            circle has that radius, a square that half side, and the upward triangle (centroid at its
            position) spans 2 radius x 2 radius, 4/3 radius above and 2/3 radius below its centroid.
        motion: one of MOTIONS.
        position: (x, y) world position at t = 0 in pixels; for "orbit", the orbit's centre.
        velocity: (vx, vy) in pixels per second for the bouncing motions: "horizontal" needs vy == 0,
            "vertical" vx == 0, "diagonal" both non-zero; zero for every other motion.
        orbit_radius: radius of the circular path in pixels ("orbit" only).
        angular_speed: radians per second, positive turns clockwise on screen ("orbit" only).
        phase: orbit angle at t = 0 in radians, 0 pointing right ("orbit" only).
        keypoints: ((t_seconds, x, y), ...) with increasing times, linearly interpolated and held
            constant before the first and after the last ("trajectory" only).
    """

    shape: str
    color: str
    size: str
    motion: str
    position: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    orbit_radius: float = 0.0
    angular_speed: float = 0.0
    phase: float = 0.0
    keypoints: tuple[tuple[float, float, float], ...] = ()

    def __post_init__(self) -> None:
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("color", self.color, COLORS)
        _check_choice("size", self.size, SIZES)
        _check_choice("motion", self.motion, MOTIONS)
        _finite("position", tuple(self.position))
        _finite("velocity", tuple(self.velocity))
        _finite("orbit parameters", (self.orbit_radius, self.angular_speed, self.phase))
        vx, vy = self.velocity
        needs = {
            "horizontal": (vx != 0 and vy == 0, "vx != 0 and vy == 0"),
            "vertical": (vx == 0 and vy != 0, "vx == 0 and vy != 0"),
            "diagonal": (vx != 0 and vy != 0, "vx != 0 and vy != 0"),
        }
        ok, rule = needs.get(self.motion, (vx == 0 and vy == 0, "velocity (0, 0)"))
        if not ok:
            raise ValueError(f"motion {self.motion!r} needs {rule}, got velocity {self.velocity}")
        if self.motion == "orbit" and (self.orbit_radius <= 0 or self.angular_speed == 0):
            raise ValueError(
                f"motion 'orbit' needs orbit_radius > 0 and angular_speed != 0, "
                f"got {self.orbit_radius} and {self.angular_speed}"
            )
        if self.motion != "orbit" and (self.orbit_radius or self.angular_speed):
            raise ValueError(f"orbit_radius and angular_speed are for motion 'orbit', not {self.motion!r}")
        if self.motion == "trajectory":
            if not self.keypoints:
                raise ValueError("motion 'trajectory' needs at least one (t_seconds, x, y) keypoint")
            for point in self.keypoints:
                if len(point) != 3:
                    raise ValueError(f"a keypoint is (t_seconds, x, y), got {point!r}")
                _finite("keypoint", tuple(point))
            times = [p[0] for p in self.keypoints]
            if any(b <= a for a, b in zip(times, times[1:])):
                raise ValueError(f"keypoint times must increase strictly, got {times}")
        elif self.keypoints:
            raise ValueError(f"keypoints are for motion 'trajectory', not {self.motion!r}")

    @property
    def pitch_hz(self) -> float:
        return PITCH_OF_COLOR[self.color]


@dataclass(frozen=True)
class SceneSpec:
    """A whole clip: room, objects, camera pan and the output format.

    Attributes:
        objects: one or more objects of distinct colours (a detector identifies objects by colour),
            drawn in order, later ones on top.
        room: one of ROOMS, the low-saturation base colour of the background.
        backdrop: "flat" (one colour), "gradient" (a diagonal brightness ramp) or "texture" (ramp plus
            soft waves, needed by a camera pan so that the pan is visible).
        ambient: "hum" (low mains-like hum) or "noise" (soft rumble), about 30 dB below the beeps.
        pan: camera displacement (dx, dy) in pixels over the clip, at constant speed. The camera offset
            at time t is pan * (t / last_frame_time - 1/2); a pixel shows world point view + offset.
            Objects move inside the arena, the part of the world visible in every frame.
        width, height: frame size in pixels, multiples of 16 (VAE stride x patch size).
        fps: video frames per second.
        num_frames: 1 + 4k frames (the Wan VAE's temporal rule); frame i is at i / fps seconds.
        sample_rate: audio samples per second; the audio covers num_frames / fps seconds exactly.
        seed: randomness that is not geometry: ambient noise and caption wording.
    """

    objects: tuple[ObjectSpec, ...]
    room: str = "grey"
    backdrop: str = "flat"
    ambient: str = "hum"
    pan: tuple[float, float] = (0.0, 0.0)
    width: int = 64
    height: int = 64
    fps: float = 16.0
    num_frames: int = 33
    sample_rate: int = 16000
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice("room", self.room, ROOMS)
        _check_choice("backdrop", self.backdrop, BACKDROPS)
        _check_choice("ambient", self.ambient, AMBIENTS)
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 16:
                raise ValueError(f"{name} must be a positive multiple of 16, got {value!r}")
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if not isinstance(self.num_frames, int) or self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise ValueError(f"num_frames must be 1 + 4k (1, 5, 9, ..., 33, ...), got {self.num_frames!r}")
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        _finite("pan", tuple(self.pan))
        if any(self.pan) and self.backdrop != "texture":
            raise ValueError(
                f"a camera pan {self.pan} needs backdrop 'texture' so that the pan is visible, "
                f"got backdrop {self.backdrop!r}"
            )
        if abs(self.pan[0]) > self.width / 2 or abs(self.pan[1]) > self.height / 2:
            raise ValueError(
                f"pan {self.pan} is too large: at most half the frame ({self.width / 2}, {self.height / 2})"
            )
        if not self.objects:
            raise ValueError("a scene needs at least one object")
        colors = [o.color for o in self.objects]
        if len(set(colors)) != len(colors):
            raise ValueError(f"objects in a scene must have distinct colours, got {colors}")
        for index, obj in enumerate(self.objects):
            _check_inside_arena(self, index, obj)

    @property
    def duration_seconds(self) -> float:
        """Length of the audio: the video's frames each last 1 / fps."""
        return self.num_frames / self.fps

    @property
    def num_samples(self) -> int:
        return round(self.num_frames * self.sample_rate / self.fps)

    def radius(self, obj: ObjectSpec) -> float:
        """Radius of `obj` in pixels (see ObjectSpec.size)."""
        return RADIUS_FRACTION_OF_SIZE[obj.size] * min(self.width, self.height)

    def arena(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the world region in view in every frame; the objects' walls."""
        half_x, half_y = abs(self.pan[0]) / 2, abs(self.pan[1]) / 2
        return (half_x, half_y, self.width - half_x, self.height - half_y)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; `SceneSpec.from_dict` inverts it."""
        return config.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneSpec:
        """Build and validate a scene from `to_dict` output; unknown keys and wrong types are errors."""
        return config.from_dict(cls, data)


def shape_extents(shape: str, radius: float) -> tuple[float, float, float, float]:
    """Distances (left, right, up, down) from an object's position to the edges of its bounding box."""
    if shape == "triangle":
        return (radius, radius, 4 * radius / 3, 2 * radius / 3)
    return (radius, radius, radius, radius)


def _check_inside_arena(scene: SceneSpec, index: int, obj: ObjectSpec) -> None:
    """Every position an object can take must keep its whole shape inside the arena."""
    left, right, up, down = shape_extents(obj.shape, scene.radius(obj))
    x0, y0, x1, y1 = scene.arena()
    lo_x, hi_x, lo_y, hi_y = x0 + left, x1 - right, y0 + up, y1 - down
    if lo_x > hi_x or lo_y > hi_y:
        raise ValueError(f"object {index} ({obj.size}) does not fit in the arena {scene.arena()}")
    if obj.motion == "orbit":
        r = obj.orbit_radius
        cx, cy = obj.position
        points = [(cx - r, cy - r), (cx + r, cy + r)]
        what = f"orbit (centre {obj.position}, radius {r})"
    elif obj.motion == "trajectory":
        points = [(x, y) for _, x, y in obj.keypoints]
        what = "trajectory keypoint"
    else:
        points = [tuple(obj.position)]
        what = "position"
    eps = 1e-9
    for x, y in points:
        if not (lo_x - eps <= x <= hi_x + eps and lo_y - eps <= y <= hi_y + eps):
            raise ValueError(
                f"object {index}: {what} {(x, y)} leaves the arena; its position must stay within "
                f"x in [{lo_x:.3g}, {hi_x:.3g}], y in [{lo_y:.3g}, {hi_y:.3g}]"
            )
