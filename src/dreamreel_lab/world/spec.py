"""A clip, fully described: the :class:`Scene` value, and how random scenes are drawn.

Why a plain frozen value: the scene is the ground truth that training captions are written
from and that the analyzer's verdicts are scored against, so it must be hashable, comparable,
serialisable (``to_dict``/``from_dict``) and independent of output size. Nothing here knows
pixels; :mod:`.layout` turns a scene into positions for a given frame size.

The vocabulary enums are re-exported here so callers can import the world from one place.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from dreamreel_lab.world.split import Role, Split
from dreamreel_lab.world.vocab import (
    COLOUR_RGB,
    DIRECTIONS,
    FORBIDDEN,
    Background,
    Camera,
    Colour,
    Motion,
    Shape,
    colour_allowed_on,
)

__all__ = [
    "COLOUR_RGB",
    "DIRECTIONS",
    "FORBIDDEN",
    "REDUCED_WORLD",
    "Allowed",
    "Background",
    "Camera",
    "Colour",
    "Motion",
    "ObjectSpec",
    "Scene",
    "Shape",
    "Split",
    "sample_scene",
]

SIZE_RANGE = (0.20, 0.24)
"""Nominal object radius, as a fraction of the frame's short side (a ball's diameter ~40-48 %).

Not smaller: at the embedded model's 96 px short side 0.09-0.13 makes objects 10-25 px, under 1.5 cells
of its 16x latent grid, and its VAE blurred every shape into a blob (shape read off 17 % of
reconstructions after 10,000 steps while colour reached 92 %). 0.14-0.19 (27-36 px, about two cells)
still comes back round: the shipped VAE's reconstructions read shape 40 %.
At 0.20-0.24 (38-46 px, ~2.6 cells) the same VAE, untrained on them, reads shape 52 % and motion
94 % (92 % at 0.14-0.19) on 48 held-out clips (``training/vae_eval.py``), and the analyzer reads rendered
clips as well as at the smaller sizes.
Larger radii (0.25-0.30) leave no room to move in a 9:16 frame. The subject of a generated clip is
also this prominent in the videos people prompt for."""
PAIR_SIZE_SCALE = 0.55
"""Two objects share the frame (each gets half the long axis), so each is drawn this much smaller
(not 0.7: with this ``SIZE_RANGE`` that lets a pair in a square frame run off its edge)."""
SPEED_RANGE = (0.85, 1.15)
"""Multiplier on a motion's nominal travel (see :mod:`.layout`)."""


@dataclass(frozen=True)
class ObjectSpec:
    """One object: what it is and what it does, plus the free parameters that vary its clip."""

    shape: Shape
    colour: Colour
    motion: Motion
    size: float = 0.165
    """Nominal radius as a fraction of the frame's short side (growing/shrinking scale around it)."""
    speed: float = 1.0
    """Multiplier on the motion's nominal travel distance / bounce height / circle radius."""
    place_x: float = 0.5
    """Where the whole on-screen path sits within the room left for it: 0 = leftmost, 1 = rightmost."""
    place_y: float = 0.5
    """As ``place_x``, vertically: 0 = top, 1 = bottom."""
    clockwise: bool = True
    """Direction of travel for ``circling`` (on screen); ignored otherwise."""

    def __post_init__(self) -> None:
        if not 0.03 <= self.size <= 0.25:
            raise ValueError(f"size {self.size} outside [0.03, 0.25]")
        if not 0.3 <= self.speed <= 2.0:
            raise ValueError(f"speed {self.speed} outside [0.3, 2]")
        if not (0.0 <= self.place_x <= 1.0 and 0.0 <= self.place_y <= 1.0):
            raise ValueError("place_x/place_y must be in [0, 1]")


@dataclass(frozen=True)
class Scene:
    """Everything that determines a clip (together with the output size and frame count)."""

    objects: tuple[ObjectSpec, ...]
    background: Background
    camera: Camera = Camera.STATIC
    seed: int = 0
    """Drives every texture detail (clouds, stars, grass blades, wave glints)."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 2:
            raise ValueError("a scene has one or two objects")
        for obj in self.objects:
            if not colour_allowed_on(obj.colour, self.background):
                raise ValueError(f"a {obj.colour} object is camouflaged on {self.background}")
        if len({obj.colour for obj in self.objects}) != len(self.objects):
            raise ValueError("two objects in one scene must differ in colour")

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": [
                {
                    "shape": str(o.shape),
                    "colour": str(o.colour),
                    "motion": str(o.motion),
                    "size": o.size,
                    "speed": o.speed,
                    "place_x": o.place_x,
                    "place_y": o.place_y,
                    "clockwise": o.clockwise,
                }
                for o in self.objects
            ],
            "background": str(self.background),
            "camera": str(self.camera),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scene:
        objects = tuple(
            ObjectSpec(
                shape=Shape(o["shape"]),
                colour=Colour(o["colour"]),
                motion=Motion(o["motion"]),
                size=float(o.get("size", 0.165)),
                speed=float(o.get("speed", 1.0)),
                place_x=float(o.get("place_x", 0.5)),
                place_y=float(o.get("place_y", 0.5)),
                clockwise=bool(o.get("clockwise", True)),
            )
            for o in data["objects"]
        )
        return cls(
            objects=objects,
            background=Background(data["background"]),
            camera=Camera(data.get("camera", "static")),
            seed=int(data.get("seed", 0)),
        )


@dataclass(frozen=True)
class Allowed:
    """Restrictions on :func:`sample_scene`: a reduced world, or one side of a :class:`Split`.

    ``None`` for an attribute set means "everything in the vocabulary".
    """

    shapes: Collection[Shape] | None = None
    colours: Collection[Colour] | None = None
    motions: Collection[Motion] | None = None
    backgrounds: Collection[Background] | None = None
    cameras: Collection[Camera] | None = None
    object_counts: tuple[int, ...] = (1, 2)
    two_object_probability: float = 0.3
    """Chance of a two-object scene when both counts are allowed."""
    split: Split | None = None
    role: Role = "train"
    """With a ``split``: draw only training scenes, or only scenes showing a held-out combination."""
    sizes: tuple[float, float] = field(default=SIZE_RANGE)


REDUCED_WORLD = Allowed(
    shapes=(Shape.BALL, Shape.SQUARE, Shape.TRIANGLE),
    colours=(Colour.RED, Colour.GREEN, Colour.BLUE, Colour.YELLOW),
    motions=(Motion.LEFT, Motion.RIGHT, Motion.UP, Motion.DOWN, Motion.STILL),
    backgrounds=(Background.PLAIN, Background.SKY, Background.SAND),
    cameras=(Camera.STATIC,),
    object_counts=(1,),
)
"""A small world for an early training probe: few words, one object, fixed camera."""


def _pick(rng: np.random.Generator, choices: Collection[Any] | None, everything: type[StrEnum]) -> Any:
    pool = list(everything) if choices is None else [v for v in everything if v in set(choices)]
    if not pool:
        raise ValueError(f"no allowed {everything.__name__} values")
    return pool[int(rng.integers(len(pool)))]


def _sample_object(
    rng: np.random.Generator, allowed: Allowed, background: Background, taken: set[Colour], size_scale: float = 1.0
) -> ObjectSpec:
    colours = [
        c
        for c in Colour
        if (allowed.colours is None or c in set(allowed.colours))
        and colour_allowed_on(c, background)
        and c not in taken
    ]
    if not colours:
        raise ValueError(f"no allowed colour is visible on {background}")
    return ObjectSpec(
        shape=_pick(rng, allowed.shapes, Shape),
        colour=colours[int(rng.integers(len(colours)))],
        motion=_pick(rng, allowed.motions, Motion),
        size=round(size_scale * float(rng.uniform(*allowed.sizes)), 4),
        speed=round(float(rng.uniform(*SPEED_RANGE)), 4),
        place_x=round(float(rng.uniform(0.0, 1.0)), 4),
        place_y=round(float(rng.uniform(0.0, 1.0)), 4),
        clockwise=bool(rng.integers(2)),
    )


def sample_scene(rng: np.random.Generator, *, allowed: Allowed | None = None, max_tries: int = 2000) -> Scene:
    """Draw a random valid scene (camouflage pairs never occur) within ``allowed``."""
    allowed = allowed or Allowed()
    counts = sorted(set(allowed.object_counts))
    if not counts or not set(counts) <= {1, 2}:
        raise ValueError("object_counts must be drawn from {1, 2}")
    for _ in range(max_tries):
        background = _pick(rng, allowed.backgrounds, Background)
        camera = _pick(rng, allowed.cameras, Camera)
        count = counts[0] if len(counts) == 1 else (2 if rng.random() < allowed.two_object_probability else 1)
        try:
            objects: list[ObjectSpec] = []
            for _ in range(count):
                scale = PAIR_SIZE_SCALE if count == 2 else 1.0
                objects.append(_sample_object(rng, allowed, background, {o.colour for o in objects}, scale))
        except ValueError:
            continue
        scene = Scene(tuple(objects), background, camera, seed=int(rng.integers(2**31 - 1)))
        if allowed.split is None or allowed.split.role(scene.objects, background) == allowed.role:
            return scene
    raise ValueError("could not draw a scene satisfying the restrictions")
