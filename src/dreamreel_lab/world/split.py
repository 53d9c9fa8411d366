"""Deterministic train / held-out assignment of attribute *combinations*.

Why: to measure whether the model composes words rather than memorising clips, evaluation
prompts must use combinations (say "purple star", or "purple on sand") that never occurred in
training, while every single word still did. A combination's side is decided by a salted hash,
so every process, machine and run agrees on it without sharing state, and changing the salt
gives a fresh, equally valid split.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from itertools import product
from typing import Literal, Protocol

from dreamreel_lab.world.vocab import Background, Colour, Motion, Shape, colour_allowed_on

Axis = Literal["colour", "shape", "motion", "background"]
Role = Literal["train", "heldout"]

_AXIS_VALUES: dict[str, tuple[StrEnum, ...]] = {
    "colour": tuple(Colour),
    "shape": tuple(Shape),
    "motion": tuple(Motion),
    "background": tuple(Background),
}


class _HasAttributes(Protocol):
    shape: Shape
    colour: Colour
    motion: Motion


@dataclass(frozen=True)
class Split:
    """Which ``axes`` combinations are held out: e.g. ``("colour", "shape")`` or ``("colour", "background")``."""

    axes: tuple[Axis, ...] = ("colour", "shape")
    heldout_fraction: float = 0.15
    salt: str = "dreamreel-world-split-v1"

    def __post_init__(self) -> None:
        if len(self.axes) < 2 or len(set(self.axes)) != len(self.axes):
            raise ValueError("a split needs at least two distinct axes")
        unknown = set(self.axes) - set(_AXIS_VALUES)
        if unknown:
            raise ValueError(f"unknown split axes {sorted(unknown)}")
        if not 0.0 < self.heldout_fraction < 0.5:
            raise ValueError("heldout_fraction must be in (0, 0.5)")

    def combos(self) -> tuple[tuple[str, ...], ...]:
        """Every valid combination on this split's axes (camouflage pairs excluded)."""
        return _combos(self.axes)

    def heldout(self) -> frozenset[tuple[str, ...]]:
        """The held-out combinations (as tuples of attribute values in ``axes`` order)."""
        return _heldout(self.axes, self.heldout_fraction, self.salt)

    def key(self, obj: _HasAttributes, background: Background) -> tuple[str, ...]:
        values = {"colour": obj.colour, "shape": obj.shape, "motion": obj.motion, "background": background}
        return tuple(str(values[axis]) for axis in self.axes)

    def is_heldout(self, obj: _HasAttributes, background: Background) -> bool:
        return self.key(obj, background) in self.heldout()

    def role(self, objects: tuple[_HasAttributes, ...], background: Background) -> Role:
        """A clip is held out if any of its objects shows a held-out combination."""
        return "heldout" if any(self.is_heldout(obj, background) for obj in objects) else "train"


@lru_cache(maxsize=32)
def _combos(axes: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    found = []
    for values in product(*(_AXIS_VALUES[axis] for axis in axes)):
        named = dict(zip(axes, values, strict=True))
        colour, background = named.get("colour"), named.get("background")
        if (
            isinstance(colour, Colour)
            and isinstance(background, Background)
            and not colour_allowed_on(colour, background)
        ):
            continue
        found.append(tuple(str(v) for v in values))
    return tuple(found)


@lru_cache(maxsize=32)
def _heldout(axes: tuple[str, ...], fraction: float, salt: str) -> frozenset[tuple[str, ...]]:
    combos = _combos(axes)
    ranked = sorted(combos, key=lambda combo: hashlib.blake2b(f"{salt}|{'|'.join(combo)}".encode()).digest())
    # Every single value must keep at least one training combination, or "held out" would
    # test an unseen word rather than an unseen composition.
    training_uses = Counter((i, v) for combo in combos for i, v in enumerate(combo))
    target = round(len(combos) * fraction)
    chosen: set[tuple[str, ...]] = set()
    for combo in ranked:
        if len(chosen) >= target:
            break
        if all(training_uses[(i, v)] > 1 for i, v in enumerate(combo)):
            chosen.add(combo)
            for i, v in enumerate(combo):
                training_uses[(i, v)] -= 1
    return frozenset(chosen)
