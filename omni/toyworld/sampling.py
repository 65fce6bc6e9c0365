"""Draw random scenes from a seed, optionally constrained (shape=, color=, motion=, pan=, ...).

Sampled scenes keep every event measurable: a bouncing object hits a wall 1 to 4 times per axis, beeps
in a scene are at least MIN_BEEP_GAP_SECONDS apart (so each is its own onset), and two objects do not
overlap where the room leaves space for that (two large objects sweeping the room often cannot avoid
each other; after NON_OVERLAP_ATTEMPTS tries they may cross, the later one drawn on top). Identity
(shape, colour, size, motion) is drawn once; the kinematics are redrawn until those rules hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from omni.toyworld.motion import bounces, frame_times, travel_limits, view_positions
from omni.toyworld.spec import (
    AMBIENTS,
    BACKDROPS,
    BOUNCING_MOTIONS,
    COLORS,
    MOTIONS,
    ROOMS,
    SHAPES,
    SIZES,
    ObjectSpec,
    SceneSpec,
    shape_extents,
)

SAMPLED_MOTIONS = tuple(m for m in MOTIONS if m != "trajectory")  # trajectories only when asked for
# `motion_weights` may also draw keypoint paths ("trajectory": the motion that motion control is scored on);
# it comes last in MOTIONS, so a weighted draw without it draws what it drew before the option took it.
WEIGHTED_MOTIONS = SAMPLED_MOTIONS + ("trajectory",)
TWO_OBJECT_PROBABILITY = 0.15  # mostly one object: each sample teaches one shape-colour-motion binding
PAN_PROBABILITY = 0.15
PAN_FRACTION_RANGE = (0.1, 0.16)  # camera travel as a fraction of the frame width
BOUNCE_TRAVERSALS = (1.2, 3.6)  # arena crossings per clip, one-axis bounces
DIAGONAL_TRAVERSALS = (0.9, 2.4)  # arena crossings per clip on each axis of a diagonal bounce
MAX_BOUNCES_PER_AXIS = 4
ORBIT_TURNS = (0.8, 1.5)  # revolutions per clip: enough arc to tell an orbit from a bounce
ORBIT_RADIUS_FRACTION = (0.12, 0.25)  # of the frame's shorter side
MIN_BEEP_GAP_SECONDS = 0.15
# Lane kinematics (`sample_scene(lanes=...)`): a bouncing object crosses the middle of the arena from a set
# start at a set pace, an orbit circles its centre from a set angle. The caption's motion word then says
# where the object is at every moment, not only how it moves, from the first sampling step on: "left and
# right" starts at the middle row's left end and heads right, "up and down" at the middle column's top and
# heads down, "diagonally" at the top-left corner, "circling" at the top of its circle, clockwise on screen.
# (A free draw's start and direction are random: there the word says only how the object moves, which a
# model must learn from frame to frame, where in lanes it can learn it from the first frame.)
LANE_JITTER_PX = 2.0  # the lane's offset from the arena's middle, and the start's from the travel's end
LANE_TRAVERSALS = (1.8, 2.2)
LANE_DIAGONAL_TRAVERSALS = (1.2, 1.5)
LANE_ORBIT_RADIUS_FRACTION = 0.2
LANE_ORBIT_TURNS = (1.0, 1.2)
LANE_ORBIT_START = -math.pi / 2  # the top of the circle (y grows downwards); a positive speed turns clockwise
NON_OVERLAP_ATTEMPTS = 200
MAX_ATTEMPTS = 500

Choice = str | Sequence[str] | None


def sample_scene(
    seed: int,
    *,
    num_objects: int | None = None,
    shape: Choice = None,
    color: Choice = None,
    size: Choice = None,
    motion: Choice = None,
    room: str | None = None,
    backdrop: str | None = None,
    ambient: str | None = None,
    pan: bool | tuple[float, float] | None = None,
    width: int = 64,
    height: int = 64,
    fps: float = 16.0,
    num_frames: int = 33,
    sample_rate: int = 16000,
    lanes: float = 0.0,
    motion_weights: dict[str, float] | None = None,
) -> SceneSpec:
    """A random scene, the same for the same seed and constraints.

    Object constraints (shape, color, size, motion) given as one string apply to the first object;
    a sequence gives one value per object. `pan` is True / False to force or forbid a random pan, or
    an exact (dx, dy). "trajectory" motion is only drawn when asked for. With probability `lanes` the
    scene's first object moves in a lane (LANE_*: bounces through the arena's middle from a set start at
    a set pace, orbits around its centre from a set angle); at 0 (the default) the draw is exactly that of
    a world without lanes. `motion_weights` (motion -> relative weight; a motion left out is not drawn) draws
    the motions not asked for unevenly, e.g. more orbits, and may draw keypoint paths ("trajectory"), which
    are otherwise only drawn when asked for; without it (the default) each of SAMPLED_MOTIONS is equally
    likely and the draw is exactly that of a world without the option.
    """
    motion_p = motion_probabilities(motion_weights)
    if isinstance(lanes, bool) or not isinstance(lanes, (int, float)) or not 0.0 <= lanes <= 1.0:
        raise ValueError(f"lanes is a probability in [0, 1], got {lanes!r}")
    rng = np.random.default_rng(seed)
    if num_objects is None:
        lengths = {len(c) for c in (shape, color, size, motion) if c is not None and not isinstance(c, str)}
        num_objects = lengths.pop() if len(lengths) == 1 else 1 + int(rng.random() < TWO_OBJECT_PROBABILITY)
    if num_objects not in (1, 2):
        raise ValueError(f"num_objects must be 1 or 2, got {num_objects!r}")
    fixed = {
        name: _per_object(name, value, num_objects, allowed)
        for name, value, allowed in (
            ("shape", shape, SHAPES),
            ("color", color, COLORS),
            ("size", size, SIZES),
            ("motion", motion, MOTIONS),
        )
    }
    pan_value = _sample_pan(rng, pan, width)
    if any(pan_value) and backdrop not in (None, "texture"):
        raise ValueError(f"a camera pan needs backdrop 'texture', but backdrop={backdrop!r} was asked for")
    scene_kwargs = dict(
        room=_pick(rng, "room", room, ROOMS),
        backdrop="texture" if any(pan_value) else _pick(rng, "backdrop", backdrop, BACKDROPS),
        ambient=_pick(rng, "ambient", ambient, AMBIENTS),
        pan=pan_value,
        width=width,
        height=height,
        fps=fps,
        num_frames=num_frames,
        sample_rate=sample_rate,
        seed=seed,
    )
    identities = _sample_identities(rng, fixed, num_objects, motion_p)
    # No draw without lanes, so a world without them draws the scenes it always drew.
    in_lanes = bool(lanes) and bool(rng.random() < lanes)
    # Validate the format once with a still placeholder, so a bad width or fps is reported as such.
    probe = SceneSpec(
        objects=(ObjectSpec("circle", "red", "small", "still", (width / 2, height / 2)),), **scene_kwargs
    )
    for attempt in range(MAX_ATTEMPTS):
        # Only the first object takes the lane: two from the same start would move as one.
        objects = tuple(
            _sample_kinematics(rng, probe, *identity, lanes=in_lanes and i == 0)
            for i, identity in enumerate(identities)
        )
        scene = SceneSpec(objects=objects, **scene_kwargs)
        if _measurable(scene, allow_overlap=attempt >= NON_OVERLAP_ATTEMPTS):
            return scene
    raise RuntimeError(
        f"no measurable scene found in {MAX_ATTEMPTS} attempts for seed {seed} and {identities}"
    )


def _per_object(name: str, value: Choice, count: int, allowed: tuple[str, ...]) -> list[str | None]:
    """Spread a constraint over the objects: a string fixes the first object, a sequence each one."""
    values: list[str | None]
    if value is None or isinstance(value, str):
        values = [value] + [None] * (count - 1)
    else:
        values = list(value)
        if len(values) != count:
            raise ValueError(f"{name} gives {len(values)} values {values} for {count} object(s)")
    for v in values:
        if v is not None and v not in allowed:
            raise ValueError(f"unknown {name} {v!r}; choose one of {list(allowed)}")
    return values


def _pick(rng: np.random.Generator, name: str, value: str | None, allowed: tuple[str, ...]) -> str:
    if value is None:
        return str(rng.choice(allowed))
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(allowed)}")
    return value


def _sample_pan(
    rng: np.random.Generator, pan: bool | tuple[float, float] | None, width: int
) -> tuple[float, float]:
    """No pan, or a camera move of 10-16% of the width along one of 8 compass directions."""
    if pan is not None and not isinstance(pan, bool):
        return (float(pan[0]), float(pan[1]))
    wanted = rng.random() < PAN_PROBABILITY if pan is None else pan
    if not wanted:
        return (0.0, 0.0)
    angle = rng.integers(8) * np.pi / 4
    amount = rng.uniform(*PAN_FRACTION_RANGE) * width
    return (round(float(amount * np.cos(angle)), 6) + 0.0, round(float(amount * np.sin(angle)), 6) + 0.0)


def motion_probabilities(weights: dict[str, float] | None) -> np.ndarray | None:
    """WEIGHTED_MOTIONS' probabilities from relative `weights` (None: SAMPLED_MOTIONS evenly, drawn as
    without weights)."""
    if weights is None:
        return None
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"motion_weights maps motions to relative weights, got {weights!r}")
    unknown = sorted(set(weights) - set(WEIGHTED_MOTIONS), key=str)
    if unknown:
        raise ValueError(f"motion_weights: unknown motion(s) {unknown}; choose from {list(WEIGHTED_MOTIONS)}")
    values = []
    for motion in WEIGHTED_MOTIONS:
        value = weights.get(motion, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ValueError(f"motion_weights: {motion} has weight {value!r}; a weight is a number >= 0")
        values.append(float(value))
    total = sum(values)
    if total <= 0:
        raise ValueError(f"motion_weights: {weights} gives every motion weight 0")
    return np.array(values) / total


def _sample_identities(
    rng: np.random.Generator,
    fixed: dict[str, list[str | None]],
    count: int,
    motion_p: np.ndarray | None = None,
) -> list[tuple[str, str, str, str]]:
    """(shape, color, size, motion) per object, honouring the constraints; colours all distinct."""
    taken = {c for c in fixed["color"] if c is not None}
    if len(taken) < sum(c is not None for c in fixed["color"]):
        raise ValueError(f"objects in a scene must have distinct colours, got {fixed['color']}")
    identities = []
    for i in range(count):
        color = fixed["color"][i]
        if color is None:
            color = str(rng.choice([c for c in COLORS if c not in taken]))
            taken.add(color)
        identities.append(
            (
                fixed["shape"][i] or str(rng.choice(SHAPES)),
                color,
                fixed["size"][i] or str(rng.choice(SIZES)),
                fixed["motion"][i]
                or str(rng.choice(SAMPLED_MOTIONS if motion_p is None else WEIGHTED_MOTIONS, p=motion_p)),
            )
        )
    return identities


def _sample_kinematics(
    rng: np.random.Generator,
    scene: SceneSpec,
    shape: str,
    color: str,
    size: str,
    motion: str,
    lanes: bool = False,
) -> ObjectSpec:
    """Start position and speeds for one object, scaled to the arena and the clip's duration."""
    limits = travel_limits(scene, ObjectSpec(shape, color, size, "still", (0.0, 0.0)))
    lo_x, hi_x, lo_y, hi_y = limits
    duration = scene.duration_seconds

    def speed(span: float, traversals: tuple[float, float]) -> float:
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(*traversals) * span / duration)

    if lanes and motion in BOUNCING_MOTIONS + ("orbit",):
        return _lane_kinematics(rng, scene, (shape, color, size), motion, limits, speed)
    position = (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))

    if motion == "horizontal":
        return ObjectSpec(shape, color, size, motion, position, (speed(hi_x - lo_x, BOUNCE_TRAVERSALS), 0.0))
    if motion == "vertical":
        return ObjectSpec(shape, color, size, motion, position, (0.0, speed(hi_y - lo_y, BOUNCE_TRAVERSALS)))
    if motion == "diagonal":
        velocity = (speed(hi_x - lo_x, DIAGONAL_TRAVERSALS), speed(hi_y - lo_y, DIAGONAL_TRAVERSALS))
        return ObjectSpec(shape, color, size, motion, position, velocity)
    if motion == "orbit":
        short = min(scene.width, scene.height)
        max_radius = min(hi_x - lo_x, hi_y - lo_y) / 2
        orbit_radius = min(rng.uniform(*ORBIT_RADIUS_FRACTION) * short, max_radius)
        center = (
            float(rng.uniform(lo_x + orbit_radius, hi_x - orbit_radius)),
            float(rng.uniform(lo_y + orbit_radius, hi_y - orbit_radius)),
        )
        return _orbit(rng, (shape, color, size), center, orbit_radius, ORBIT_TURNS, duration)
    if motion == "trajectory":
        last = (scene.num_frames - 1) / scene.fps
        keypoints = tuple(
            (float(t), float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))
            for t in np.linspace(0, last, 4)
        )
        return ObjectSpec(shape, color, size, motion, keypoints[0][1:], keypoints=keypoints)
    return ObjectSpec(shape, color, size, motion, position)


def _lane_kinematics(
    rng: np.random.Generator,
    scene: SceneSpec,
    looks: tuple[str, str, str],
    motion: str,
    limits: tuple[float, float, float, float],
    speed: Callable[[float, tuple[float, float]], float],
) -> ObjectSpec:
    """A bounce of (shape, colour, size) `looks` through the middle of its travel `limits`, from its low end
    (left, top) towards the high end at a set pace, or a clockwise orbit around the middle from its top;
    `speed(span, traversals)` draws a signed speed as `_sample_kinematics` does (its sign is dropped)."""
    lo_x, hi_x, lo_y, hi_y = limits
    middle = ((lo_x + hi_x) / 2, (lo_y + hi_y) / 2)

    def lane(axis: int) -> float:
        return float(middle[axis] + rng.uniform(-LANE_JITTER_PX, LANE_JITTER_PX))

    def start(low: float) -> float:  # near the travel's low end (left, top), heading to the high end
        return float(low + rng.uniform(0, LANE_JITTER_PX))

    def pace(span: float, traversals: tuple[float, float]) -> float:
        return abs(speed(span, traversals))

    if motion == "horizontal":
        position = (start(lo_x), lane(1))
        return ObjectSpec(*looks, motion, position, (pace(hi_x - lo_x, LANE_TRAVERSALS), 0.0))
    if motion == "vertical":
        position = (lane(0), start(lo_y))
        return ObjectSpec(*looks, motion, position, (0.0, pace(hi_y - lo_y, LANE_TRAVERSALS)))
    if motion == "diagonal":
        position = (start(lo_x), start(lo_y))
        velocity = (
            pace(hi_x - lo_x, LANE_DIAGONAL_TRAVERSALS),
            pace(hi_y - lo_y, LANE_DIAGONAL_TRAVERSALS),
        )
        return ObjectSpec(*looks, motion, position, velocity)
    room = min(hi_x - lo_x, hi_y - lo_y) / 2 - LANE_JITTER_PX  # the circle stays in the arena, jitter and all
    orbit_radius = min(LANE_ORBIT_RADIUS_FRACTION * min(scene.width, scene.height), room)
    return _orbit(
        rng,
        looks,
        (lane(0), lane(1)),
        orbit_radius,
        LANE_ORBIT_TURNS,
        scene.duration_seconds,
        start=LANE_ORBIT_START,
    )


def _orbit(
    rng: np.random.Generator,
    looks: tuple[str, str, str],
    center: tuple[float, float],
    radius: float,
    turns: tuple[float, float],
    duration: float,
    start: float | None = None,
) -> ObjectSpec:
    """An orbit of (shape, colour, size) `looks` around `center`, `turns` revolutions a clip: in a random
    direction from a random angle, or clockwise on screen from angle `start` (radians) when given."""
    if start is None:
        direction = float(rng.choice([-1.0, 1.0]))
        angular_speed = direction * float(rng.uniform(*turns)) * 2 * math.pi / duration
        phase = float(rng.uniform(0, 2 * math.pi))
    else:
        angular_speed, phase = float(rng.uniform(*turns)) * 2 * math.pi / duration, start
    return ObjectSpec(
        *looks, "orbit", center, orbit_radius=float(radius), angular_speed=angular_speed, phase=phase
    )


def _measurable(scene: SceneSpec, allow_overlap: bool) -> bool:
    """Bounces 1-4 per moving axis, beeps far enough apart, and (unless allowed) no overlap."""
    times = []
    for obj in scene.objects:
        hits = bounces(scene, obj)
        for walls, moving in ((("left", "right"), obj.velocity[0]), (("top", "bottom"), obj.velocity[1])):
            count = sum(h.wall in walls for h in hits)
            if moving and obj.motion in BOUNCING_MOTIONS and not 1 <= count <= MAX_BOUNCES_PER_AXIS:
                return False
        times += [h.time for h in hits]
    if len(times) > 1 and np.diff(np.sort(times)).min() < MIN_BEEP_GAP_SECONDS:
        return False
    return allow_overlap or len(scene.objects) < 2 or not _overlap(scene)


def _overlap(scene: SceneSpec) -> bool:
    """Whether the first two objects' bounding boxes ever touch (checked at 4 times the frame rate)."""
    times = np.linspace(0, frame_times(scene)[-1], 4 * scene.num_frames)
    boxes = []
    for obj in scene.objects[:2]:
        left, right, up, down = shape_extents(obj.shape, scene.radius(obj))
        centers = view_positions(scene, obj, times)
        boxes.append(centers[:, [0, 1, 0, 1]] + np.array([-left, -up, right, down]))
    a, b = boxes
    apart = (a[:, 2] < b[:, 0]) | (b[:, 2] < a[:, 0]) | (a[:, 3] < b[:, 1]) | (b[:, 3] < a[:, 1])
    return not bool(apart.all())
