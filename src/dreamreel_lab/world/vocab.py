"""The world's vocabulary: every attribute a clip can have, as closed enums plus the palette.

Closed enums because the same words drive three things that must never drift apart: the
renderer (what a value looks like), the caption grammar (how people say it) and the analyzer
(what it can detect). A value added here without a rendering, a phrase and a detector fails
the tests instead of silently producing unlearnable or unscorable clips.

Screen conventions used everywhere in :mod:`dreamreel_lab.world`: x grows to the right, y grows
*downwards* (image rows), so "up" is negative y.
"""

from __future__ import annotations

from enum import StrEnum


class Shape(StrEnum):
    """Object silhouettes, chosen to be told apart by outline alone (no shading in this world)."""

    BALL = "ball"
    SQUARE = "square"
    TRIANGLE = "triangle"
    STAR = "star"
    DIAMOND = "diamond"
    RING = "ring"


class Colour(StrEnum):
    """Object colours; RGB values in :data:`COLOUR_RGB`."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    GREEN = "green"
    CYAN = "cyan"
    BLUE = "blue"
    PURPLE = "purple"
    PINK = "pink"
    WHITE = "white"
    BLACK = "black"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOUR_RGB[self]


class Motion(StrEnum):
    """What an object does in the world (before the camera moves; see :class:`Camera`)."""

    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"
    UP_LEFT = "up_left"
    UP_RIGHT = "up_right"
    DOWN_LEFT = "down_left"
    DOWN_RIGHT = "down_right"
    BOUNCING = "bouncing"
    CIRCLING = "circling"
    GROWING = "growing"
    SHRINKING = "shrinking"
    STILL = "still"


class Background(StrEnum):
    """Scenery classes. ``plain`` is one class: a neutral grey backdrop with a faint paper mottle."""

    SKY = "sky"
    NIGHT = "night"
    SUNSET = "sunset"
    GRASS = "grass"
    SAND = "sand"
    WATER = "water"
    PLAIN = "plain"


class Camera(StrEnum):
    """Camera moves; the names are the API's camera concepts, so they must not be renamed.

    On screen: ``pan_left`` slides the whole scene right, ``tilt_up`` slides it down,
    ``zoom_in`` magnifies about the frame centre, and ``orbit_left`` circles the subject to
    the left, so the far scenery (top of frame) slides left while the near ground (bottom)
    slides right and the objects (at the pivot) stay put.
    """

    STATIC = "static"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    TILT_UP = "tilt_up"
    TILT_DOWN = "tilt_down"
    ZOOM_IN = "zoom_in"
    ZOOM_OUT = "zoom_out"
    ORBIT_LEFT = "orbit_left"
    ORBIT_RIGHT = "orbit_right"


COLOUR_RGB: dict[Colour, tuple[int, int, int]] = {
    # Pairwise RGB distance >= ~99 (closest pairs: red/orange, orange/yellow), so a mild colour
    # cast or the blur of a small model's output cannot turn one named colour into another.
    Colour.RED: (215, 35, 35),
    Colour.ORANGE: (240, 130, 20),
    Colour.YELLOW: (250, 225, 45),
    Colour.GREEN: (40, 175, 60),
    Colour.CYAN: (30, 205, 215),
    Colour.BLUE: (35, 70, 215),
    Colour.PURPLE: (135, 50, 190),
    Colour.PINK: (250, 120, 185),
    Colour.WHITE: (245, 245, 245),
    Colour.BLACK: (20, 20, 20),
}

FORBIDDEN: frozenset[tuple[Colour, Background]] = frozenset(
    {
        # Camouflage pairs: the object's colour is (nearly) a colour the scenery itself uses,
        # so neither a viewer nor the analyzer could tell object from background.
        (Colour.WHITE, Background.SKY),  # white clouds
        (Colour.BLACK, Background.NIGHT),  # the night sky is near-black
        (Colour.ORANGE, Background.SUNSET),  # the sunset glow is orange
        (Colour.GREEN, Background.GRASS),  # grass is green
    }
)

DIRECTIONS: dict[Motion, tuple[int, int]] = {
    Motion.LEFT: (-1, 0),
    Motion.RIGHT: (1, 0),
    Motion.UP: (0, -1),
    Motion.DOWN: (0, 1),
    Motion.UP_LEFT: (-1, -1),
    Motion.UP_RIGHT: (1, -1),
    Motion.DOWN_LEFT: (-1, 1),
    Motion.DOWN_RIGHT: (1, 1),
}
"""Unit screen direction (x right, y down) of every translating motion."""


def colour_allowed_on(colour: Colour, background: Background) -> bool:
    """Whether an object of ``colour`` stays distinguishable on ``background``."""
    return (colour, background) not in FORBIDDEN
