"""Name an object's silhouette by matching it against the world's own shape templates.

Why templates rather than hand-tuned features: the analyzer knows exactly which silhouettes
exist (:mod:`.geometry`, never rotated), so the most direct question is "which of them, drawn
into this blob's bounding box, overlaps it best?". Overlap (soft IoU) degrades gracefully
with blur and noise (corners round off a little for every candidate alike), and a ring's hole,
a star's notches or a triangle's flat base each cost the wrong templates a large share of
their area. Votes are summed over the frames where the object is biggest and fully visible.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from dreamreel_lab.world.geometry import coverage, extent
from dreamreel_lab.world.vocab import Shape

_PAD = 2
_BLURS = (0.0, 1.3)
_SCALES = (1.0, 1.15)
MAX_VIEWS = 3


@cache
def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) matrix applying a 1-D Gaussian blur (zero outside) to a length-n signal."""
    offsets = np.arange(n)[:, None] - np.arange(n)[None, :]
    taps = np.exp(-0.5 * (offsets / sigma) ** 2).astype(np.float32)
    return taps / taps.sum(axis=1, keepdims=True)


def _as_seen(template: np.ndarray, sigma: float) -> np.ndarray:
    """The template as a blob mask would show it after a blur of ``sigma`` pixels."""
    if sigma:
        h, w = template.shape
        template = _blur_matrix(h, sigma) @ template @ _blur_matrix(w, sigma).T
    return template >= 0.5


def shape_scores(mask: np.ndarray) -> dict[Shape, float]:
    """Overlap (IoU) of a blob's bounding-box ``mask`` with every shape fitted to that box.

    Each template is tried at a few sizes around the one its bounding box suggests (thin tips
    vanish first, so the box underestimates pointy shapes) and as a blurred camera would see
    it (corners rounded, notches filled, thresholded like the blob was); the best version
    counts, so a soft model output is not punished for not being a crisp render.
    """
    h, w = mask.shape
    pad = _PAD + int(np.ceil((max(_SCALES) - 1) * max(h, w) / 2))  # room for the largest template
    observed = np.pad(mask, pad)
    ys = np.arange(h + 2 * pad, dtype=np.float32)[:, None] + 0.5 - pad
    xs = np.arange(w + 2 * pad, dtype=np.float32)[None, :] + 0.5 - pad
    scores = {}
    for shape in Shape:
        left, right, up, down = extent(shape)
        fitted = 0.5 * (w / (left + right) + h / (up + down))
        best = 0.0
        for scale in _SCALES:
            radius = fitted * scale
            # Put the template's bounding box centre on the blob's bounding box centre.
            cx = w / 2 - radius * (right - left) / 2
            cy = h / 2 - radius * (down - up) / 2
            template = coverage(shape, xs - cx, ys - cy, radius)
            for sigma in _BLURS:
                seen = _as_seen(template, sigma)
                union = np.count_nonzero(seen | observed)
                if union:
                    best = max(best, np.count_nonzero(seen & observed) / union)
        scores[shape] = float(best)
    return scores


def classify_shape(masks: list[np.ndarray]) -> tuple[Shape, dict[Shape, float]]:
    """The shape that best matches the blob masks of one object (several frames), with scores."""
    total = dict.fromkeys(Shape, 0.0)
    for mask in masks[:MAX_VIEWS]:
        for shape, score in shape_scores(mask).items():
            total[shape] += score
    views = max(1, min(len(masks), MAX_VIEWS))
    mean = {shape: score / views for shape, score in total.items()}
    return max(mean, key=mean.__getitem__), mean
