"""Templated captions with synonyms and word-order variation, so a text encoder learns meanings, not strings.

`caption(scene)` draws its wording from the scene's seed (deterministic); `canonical_caption(scene)`
takes the first synonym and the first word order everywhere, for evaluation prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from omni.toyworld.spec import BOUNCING_MOTIONS, ObjectSpec, SceneSpec

NOUNS_OF_SHAPE = {
    "circle": ("ball", "circle", "disc", "dot"),
    "square": ("square", "box", "block", "cube"),
    "triangle": ("triangle", "wedge", "pyramid"),
}
ADJECTIVES_OF_SIZE = {"small": ("small", "tiny", "little"), "large": ("large", "big")}
MOTION_PHRASES = {
    "still": ("sitting still", "resting", "staying put"),
    "horizontal": ("bouncing left and right", "moving side to side"),
    "vertical": ("bouncing up and down", "moving up and down"),
    "diagonal": ("bouncing diagonally", "ricocheting corner to corner"),
    "orbit": ("circling", "orbiting"),
    "trajectory": ("moving along a path", "gliding along a path"),
}
ROOM_PHRASES = ("in a {room} room", "inside a {room} room")
BEEP_CLAUSES_ONE = (
    "it beeps at every bounce",
    "it beeps whenever it hits a wall",
    "each wall hit makes a beep",
)
BEEP_CLAUSES_ALL = ("they beep at every bounce", "each beeps whenever it hits a wall")
BEEP_CLAUSES_NAMED = (
    "the {color} {noun} beeps at every bounce",
    "the {color} {noun} beeps whenever it hits a wall",
)
PAN_CLAUSES = ("the camera pans {direction}", "the camera slowly pans {direction}")
AMBIENT_CLAUSES = {"hum": ("a low hum fills the room",), "noise": ("soft noise fills the room",)}
AMBIENT_PROBABILITY = 0.3
# Most captions name a shape by its canonical noun (the first): a synonym in every caption splits a shape's
# few hundred thousand training clips over three or four words.
CANONICAL_NOUN_PROBABILITY = 0.8

Choose = Callable[[Sequence[str]], str]


def caption(scene: SceneSpec, seed: int | None = None) -> str:
    """A varied caption for `scene`, deterministic in `seed` (default: the scene's own seed)."""
    rng = random.Random(scene.seed if seed is None else seed)
    canonical_noun = rng.random() < CANONICAL_NOUN_PROBABILITY
    text = _compose(scene, rng.choice, order=rng.randrange(3), canonical_noun=canonical_noun)
    if rng.random() < AMBIENT_PROBABILITY:
        text += "; " + rng.choice(AMBIENT_CLAUSES[scene.ambient])
    return text


def canonical_caption(scene: SceneSpec) -> str:
    """The caption with the first synonym and word order everywhere: stable, for evaluation prompts."""
    return _compose(scene, lambda options: options[0], order=0)


def pan_direction(pan: tuple[float, float]) -> str:
    """Compass-style name of a camera displacement: "left", "up", "down-right", ... (y points down)."""
    dx, dy = pan
    horizontal = "right" if dx > 0 else "left"
    vertical = "down" if dy > 0 else "up"
    if abs(dy) < 0.4 * abs(dx):
        return horizontal
    if abs(dx) < 0.4 * abs(dy):
        return vertical
    return f"{vertical}-{horizontal}"


def _compose(scene: SceneSpec, choose: Choose, order: int, canonical_noun: bool = True) -> str:
    """Join object, motion, room, pan and sound phrases in one of three word orders."""
    nouns = [
        NOUNS_OF_SHAPE[o.shape][0] if canonical_noun else choose(NOUNS_OF_SHAPE[o.shape])
        for o in scene.objects
    ]
    subjects = [
        f"a {choose(ADJECTIVES_OF_SIZE[o.size])} {o.color} {noun}" for o, noun in zip(scene.objects, nouns)
    ]
    motions = [choose(MOTION_PHRASES[o.motion]) for o in scene.objects]
    room = choose(ROOM_PHRASES).format(room=scene.room)
    if order == 0:  # "a small red ball bouncing left and right in a grey room"
        text = " and ".join(f"{s} {m}" for s, m in zip(subjects, motions)) + f" {room}"
    elif order == 1:  # "in a grey room, a small red ball is bouncing left and right"
        text = f"{room}, " + " and ".join(f"{s} is {m}" for s, m in zip(subjects, motions))
    else:  # "a small red ball in a grey room, bouncing left and right"
        text = f"{subjects[0]} {room}, {motions[0]}"
        text += "".join(f", with {s} {m}" for s, m in zip(subjects[1:], motions[1:]))
    if any(scene.pan):
        text += "; " + choose(PAN_CLAUSES).format(direction=pan_direction(scene.pan))
    beep = _beep_clause(scene.objects, nouns, choose)
    return text + (f"; {beep}" if beep else "")


def _beep_clause(objects: Sequence[ObjectSpec], nouns: Sequence[str], choose: Choose) -> str:
    """Say who beeps: the single object, all of them, or the one bouncing object among several."""
    bouncing = [(obj.color, noun) for obj, noun in zip(objects, nouns) if obj.motion in BOUNCING_MOTIONS]
    if not bouncing:
        return ""
    if len(objects) == 1:
        return choose(BEEP_CLAUSES_ONE)
    if len(bouncing) == len(objects):
        return choose(BEEP_CLAUSES_ALL)
    color, noun = bouncing[0]
    return choose(BEEP_CLAUSES_NAMED).format(color=color, noun=noun)
