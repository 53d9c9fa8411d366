"""Per-pixel colour knowledge for the analyzer: which background, and object or scenery.

Why lookup tables: a 160x96x41 clip has 630k pixels and the analyzer must run in tens of
milliseconds, so every pixel is quantised to 5 bits per channel and looked up once in a
32^3 table precomputed per background. The tables are built from what the world can show:
the named palette for objects and :func:`dreamreel_lab.world.textures.colour_samples` for each
background's scenery, so an object pixel is one nearer to a palette colour than to anything
that background ever paints. Nearest-neighbour decisions leave ~40 RGB units of slack each
way, which is what makes the analyzer tolerate blur, noise and mild colour casts.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from dreamreel_lab.world.textures import colour_samples
from dreamreel_lab.world.vocab import COLOUR_RGB, Background, Colour, colour_allowed_on

PALETTE: tuple[Colour, ...] = tuple(Colour)
PALETTE_RGB = np.asarray([COLOUR_RGB[c] for c in PALETTE], dtype=np.float32)

_BITS = 5
_STEP = 1 << (8 - _BITS)
MAX_OBJECT_DISTANCE = 110.0
"""Pixels farther than this from every palette colour are never object pixels."""
_SCENERY_CAP = 60.0
"""Robust cap on a pixel's distance to a background's colours when scoring backgrounds."""


def quantise(frames: np.ndarray) -> np.ndarray:
    """Index into the 32^3 tables for every pixel of uint8 RGB ``frames``."""
    q = frames >> (8 - _BITS)
    return (q[..., 0].astype(np.uint16) << (2 * _BITS)) | (q[..., 1].astype(np.uint16) << _BITS) | q[..., 2]


@cache
def _cell_colours() -> np.ndarray:
    levels = np.arange(1 << _BITS, dtype=np.float32) * _STEP + _STEP / 2
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)


@cache
def scenery_distance(background: Background) -> np.ndarray:
    """Distance from every table cell to the nearest colour ``background`` paints."""
    cells = _cell_colours()
    samples = colour_samples(background)[0].astype(np.float32)
    best = np.full(len(cells), np.inf, dtype=np.float32)
    for chunk in np.array_split(samples, max(1, len(samples) // 64)):
        d = np.sqrt(((cells[:, None, :] - chunk[None, :, :]) ** 2).sum(-1)).min(axis=1)
        np.minimum(best, d, out=best)
    return best


@cache
def object_labels(background: Background) -> np.ndarray:
    """Table: 0 for scenery, ``k + 1`` for pixels that look like palette colour ``PALETTE[k]``.

    Colours the world never puts on ``background`` (camouflage pairs) are not candidates, so
    white clouds can never be mistaken for a white object.
    """
    cells = _cell_colours()
    d = np.sqrt(((cells[:, None, :] - PALETTE_RGB[None, :, :]) ** 2).sum(-1))
    d[:, [not colour_allowed_on(c, background) for c in PALETTE]] = np.inf
    nearest = d.argmin(axis=1)
    d_min = d[np.arange(len(cells)), nearest]
    is_object = (d_min < scenery_distance(background)) & (d_min < MAX_OBJECT_DISTANCE)
    return np.where(is_object, nearest + 1, 0).astype(np.uint8)


@cache
def _main_colours(background: Background) -> tuple[np.ndarray, np.ndarray]:
    """The background's colours that make up 95 % of its pixels, with their weights."""
    colours, weights = colour_samples(background)
    order = np.argsort(-weights)
    keep = order[: int(np.searchsorted(np.cumsum(weights[order]), 0.95)) + 1]
    return colours[keep].astype(np.float32), weights[keep] / weights[keep].sum()


def classify_background(codes: np.ndarray) -> tuple[Background, dict[Background, float]]:
    """The background whose colours best match the (quantised) pixels, with every cost.

    Two capped mean distances, so a few object pixels cannot tip the decision: how far the
    clip's pixels are from the background's colours, and how far the background's *main*
    colours are from what the clip shows. The second keeps a background with a wide but rare
    colour range (the night's stars span dark to bright) from explaining everything once a
    colour cast has moved the clip away from every reference.
    """
    sample = codes.ravel()[:: max(1, codes.size // 8000)]
    counts = np.bincount(sample, minlength=1 << (3 * _BITS))
    common = counts >= max(2, len(sample) // 1000)
    shown = _cell_colours()[common if common.any() else counts > 0]
    costs = {}
    for bg in Background:
        explain = float(np.minimum(scenery_distance(bg)[sample], _SCENERY_CAP).mean())
        main, weights = _main_colours(bg)
        gaps = np.sqrt(((main[:, None, :] - shown[None, :, :]) ** 2).sum(-1)).min(axis=1)
        costs[bg] = explain + float((np.minimum(gaps, _SCENERY_CAP) * weights).sum())
    return min(costs, key=costs.__getitem__), costs


def nearest_colour(rgb: np.ndarray, background: Background | None = None) -> Colour:
    """The palette colour nearest to one RGB value (among those allowed on ``background``)."""
    d = ((PALETTE_RGB - np.asarray(rgb, dtype=np.float32)) ** 2).sum(axis=1)
    if background is not None:
        d[[not colour_allowed_on(c, background) for c in PALETTE]] = np.inf
    return PALETTE[int(np.argmin(d))]
