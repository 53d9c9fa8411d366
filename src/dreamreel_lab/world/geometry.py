"""Object silhouettes as signed distance functions, shared by the renderer and the analyzer.

Why distance functions: the renderer turns them into anti-aliased coverage (a pixel half
inside an edge gets half the colour) at any size without supersampling, and the analyzer
renders the very same silhouettes as templates to match observed blobs against. One
definition means "what a star looks like" cannot differ between drawing and judging.

Coordinates are screen-like (x right, y down) in units of the object's nominal radius ``r``;
the object's centre (centroid for the polygonal shapes) is the origin. Every shape points
*up* on screen and is never rotated, so orientation is part of the silhouette.
Sizes are chosen so every shape covers a similar area (about 2.2-3.1 r^2).
"""

from __future__ import annotations

import numpy as np

from dreamreel_lab.world.vocab import Shape

RING_OUTER = 1.05
RING_INNER = 0.46
SQUARE_HALF = 0.88
TRIANGLE_R = 1.3  # circumradius
STAR_R = 1.3  # tip radius
STAR_INNER = 0.5  # inner-vertex radius as a fraction of the tip radius
DIAMOND_HALF_W = 0.9
DIAMOND_HALF_H = 1.25

_SQRT3 = float(np.sqrt(3.0))
_STAR_K1 = (0.809016994375, -0.587785252292)  # (cos 36, -sin 36)


def signed_distance(shape: Shape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points ``(x, y)`` to ``shape`` of radius 1."""
    if shape is Shape.BALL:
        return np.hypot(x, y) - 1.0
    if shape is Shape.RING:
        mid, half = (RING_OUTER + RING_INNER) / 2, (RING_OUTER - RING_INNER) / 2
        return np.abs(np.hypot(x, y) - mid) - half
    if shape is Shape.SQUARE:
        dx, dy = np.abs(x) - SQUARE_HALF, np.abs(y) - SQUARE_HALF
        return np.hypot(np.maximum(dx, 0), np.maximum(dy, 0)) + np.minimum(np.maximum(dx, dy), 0)
    if shape is Shape.DIAMOND:
        return _rhombus(x, y, DIAMOND_HALF_W, DIAMOND_HALF_H)
    if shape is Shape.TRIANGLE:
        return _equilateral(x, -y, TRIANGLE_R * _SQRT3 / 2)
    if shape is Shape.STAR:
        return _star5(x, -y, STAR_R, STAR_INNER)
    raise ValueError(f"unknown shape {shape!r}")


def _rhombus(x: np.ndarray, y: np.ndarray, bx: float, by: float) -> np.ndarray:
    px, py = np.abs(x), np.abs(y)
    h = np.clip(((bx - 2 * px) * bx - (by - 2 * py) * by) / (bx * bx + by * by), -1.0, 1.0)
    d = np.hypot(px - 0.5 * bx * (1 - h), py - 0.5 * by * (1 + h))
    return d * np.sign(px * by + py * bx - bx * by)


def _equilateral(x: np.ndarray, y: np.ndarray, half_side: float) -> np.ndarray:
    """Inigo Quilez's sdEquilateralTriangle (y up, centroid at the origin)."""
    k = _SQRT3
    px = np.abs(x) - half_side
    py = y + half_side / k
    fold = px + k * py > 0
    qx = np.where(fold, (px - k * py) / 2, px)
    qy = np.where(fold, (-k * px - py) / 2, py)
    qx = qx - np.clip(qx, -2 * half_side, 0)
    return -np.hypot(qx, qy) * np.sign(qy)


def _star5(x: np.ndarray, y: np.ndarray, r: float, rf: float) -> np.ndarray:
    """Inigo Quilez's sdStar5 (y up, one tip straight up; inner vertices at ``rf * r``)."""
    k1x, k1y = _STAR_K1
    k2x, k2y = -k1x, k1y
    px = np.abs(x)
    py = y
    d = np.maximum(k1x * px + k1y * py, 0)
    px, py = px - 2 * d * k1x, py - 2 * d * k1y
    d = np.maximum(k2x * px + k2y * py, 0)
    px, py = px - 2 * d * k2x, py - 2 * d * k2y
    px = np.abs(px)
    py = py - r
    bax, bay = rf * -k1y, rf * k1x - 1
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0, r)
    return np.hypot(px - bax * h, py - bay * h) * np.sign(py * bax - px * bay)


def extent(shape: Shape) -> tuple[float, float, float, float]:
    """How far the silhouette reaches (left, right, up, down) from its centre, in radii."""
    return _EXTENTS[shape]


def _measure_extents() -> dict[Shape, tuple[float, float, float, float]]:
    axis = np.linspace(-1.6, 1.6, 641)
    xx, yy = np.meshgrid(axis, axis)
    found: dict[Shape, tuple[float, float, float, float]] = {}
    for shape in Shape:
        inside = signed_distance(shape, xx, yy) <= 0
        xs, ys = xx[inside], yy[inside]
        found[shape] = (float(-xs.min()), float(xs.max()), float(-ys.min()), float(ys.max()))
    return found


_EXTENTS = _measure_extents()


def coverage(shape: Shape, x: np.ndarray, y: np.ndarray, radius_px: np.ndarray | float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of pixels at ``(x, y)`` (pixels, relative to the centre)."""
    radius = np.maximum(np.asarray(radius_px, dtype=np.float32), 1e-3)
    distance_px = signed_distance(shape, x / radius, y / radius) * radius
    return np.clip(0.5 - distance_px, 0.0, 1.0)
