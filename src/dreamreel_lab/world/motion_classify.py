"""Name an object's motion from its track, after taking the camera's move out.

Why relative to the camera: a "still" ball filmed by a panning camera drifts across the
screen, and a zooming camera makes everything grow. So positions are mapped back to where the
first frame would have shown them (:meth:`CameraMotion.to_scene`) and sizes are divided by
the zoom before anything is decided. Then the track's shape decides, in this order:

* wobble on both axes around a straight line (a loop that ends where it began) -> circling;
* wobble mostly up and down with little net travel -> bouncing;
* little net travel -> growing / shrinking by the change in size, else still;
* otherwise the direction of net travel, in eight 45 degree sectors.

Thresholds are fractions of the world's nominal moves (:mod:`.layout`), in short sides.
"""

from __future__ import annotations

import math

import numpy as np

from dreamreel_lab.world.camera_motion import CameraMotion
from dreamreel_lab.world.vocab import DIRECTIONS, Motion

WOBBLE = 0.035
"""Residual spread (short sides) around the straight-line fit that counts as a loop or bounce."""
MIN_TRAVEL = 0.12
"""Net travel (short sides) below which an object is not going anywhere."""
MIN_GROWTH = math.log(1.35)
"""Size change (log) that counts as growing/shrinking; the world's is log 2."""


def _line_fit(u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Total change over the clip of the least-squares line, and spread around it."""
    design = np.stack([np.ones_like(u), u], axis=1)
    coef = np.linalg.lstsq(design, v, rcond=None)[0]
    return float(coef[1]), float(np.std(v - design @ coef))


def classify_motion(
    frames: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    area: np.ndarray,
    camera: CameraMotion,
    total_frames: int,
    width: int,
    height: int,
) -> Motion:
    """The motion of one object observed at ``frames`` with centroids and areas (pixels)."""
    if len(frames) < 3:
        return Motion.STILL
    short = min(width, height)
    sx, sy, scale = camera.to_scene(cx, cy, frames, width, height)
    u = frames / max(1, total_frames - 1)
    travel_x, wobble_x = _line_fit(u, sx / short)
    travel_y, wobble_y = _line_fit(u, sy / short)
    growth, _ = _line_fit(u, np.log(np.sqrt(np.maximum(area, 1.0)) / scale))
    travel = math.hypot(travel_x, travel_y)
    if min(wobble_x, wobble_y) > WOBBLE and min(wobble_x, wobble_y) > 0.4 * max(wobble_x, wobble_y):
        return Motion.CIRCLING
    if wobble_y > WOBBLE and wobble_x < 0.5 * wobble_y and travel < 2 * MIN_TRAVEL:
        return Motion.BOUNCING
    if travel < MIN_TRAVEL:
        if growth > MIN_GROWTH:
            return Motion.GROWING
        if growth < -MIN_GROWTH:
            return Motion.SHRINKING
        return Motion.STILL
    sector = round(math.atan2(travel_y, travel_x) / (math.pi / 4))
    step = (round(math.cos(sector * math.pi / 4)), round(math.sin(sector * math.pi / 4)))
    return next(motion for motion, direction in DIRECTIONS.items() if direction == step)
