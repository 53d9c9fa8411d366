"""Seamless loops: a clip's tail cross-faded into its head, or into its start image.

fal describes Ray 2's ``loop`` as "end of video is blended with the beginning"; this is that blend. A
clip ``x`` of ``F`` frames and an overlap ``L`` become ``F - L`` frames: the first ``L`` are
``w*x[j] + (1-w)*x[F-L+j]`` with ``w`` rising along a raised cosine from near 0 to near 1; the rest
are ``x[L:F-L]``. Played in a loop, the last frame ``x[F-L-1]`` is followed by (almost only)
``x[F-L]``, its natural successor, and the head then fades into the clip's own beginning: no cut
anywhere.

Why a raised cosine, not a straight ramp: with ``w = (j+1)/(L+1)`` every blended step, the wrap
included, carries ``1/(L+1)`` of the difference between head and tail, so the wrap was 2.25x the
clip's median step on the embedded model (``bench/bench_controls.py``). The cosine starts
and ends the fade slowly, where the loop's restart and the fade's end are, and fades fastest mid-way,
where that step is ``pi/2`` times the straight ramp's. Its weights sit at the midpoints of ``L`` equal
steps, ``(j + 0.5)/L`` rather than ``(j+1)/(L+1)``: the first and last weights are 1 % for
``L = 8`` instead of 3 %. For the cross-fade that changes nothing measurable (wrap 1.13 -> 1.12, the tail's
own last step); for :func:`fade_into_start`, whose head and tail differ far more, it is what keeps the wrap
small.

A loop on a start image (:func:`fade_into_start`) is for a model that cannot land its last frame on an
image: the clip starts on the image, as the model drew it from the start keyframe, and its last ``L``
frames dissolve into that first frame, so playback wraps onto the image. It keeps every generated frame
(no extra ones are generated for it); the motion slows into the still picture instead of a cut.
"""

from __future__ import annotations

import numpy as np


def blend_loop(frames: np.ndarray, overlap: int) -> np.ndarray:
    """Return ``frames`` (``(F, h, w, 3)`` uint8) shortened by ``overlap`` and cross-faded into a cycle."""
    count = frames.shape[0]
    _check_overlap(count, overlap)
    weights = fade_weights(overlap)
    head = frames[:overlap].astype(np.float32)
    tail = frames[count - overlap :].astype(np.float32)
    blended = np.clip(np.rint(weights * head + (1 - weights) * tail), 0, 255).astype(np.uint8)
    return np.concatenate([blended, frames[overlap : count - overlap]], axis=0)


def _check_overlap(count: int, overlap: int) -> None:
    """Both closings take ``overlap`` frames from each end of a ``count``-frame clip; the ends must not overlap."""
    if overlap < 1 or 2 * overlap > count:
        raise ValueError(f"overlap must be in 1..{count // 2} for {count} frames, got {overlap}")


def fade_weights(overlap: int) -> np.ndarray:
    """Weights of the arriving picture over ``overlap`` frames: a raised cosine sampled at step midpoints,
    shaped ``(overlap, 1, 1, 1)`` to broadcast over frames."""
    phase = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    return (0.5 - 0.5 * np.cos(np.pi * phase))[:, None, None, None]


def fade_into_start(frames: np.ndarray, overlap: int) -> np.ndarray:
    """``frames`` (``(F, h, w, 3)`` uint8), same length, with the last ``overlap`` dissolving into ``frames[0]``."""
    count = frames.shape[0]
    _check_overlap(count, overlap)
    weights = fade_weights(overlap)
    tail = frames[count - overlap :].astype(np.float32)
    faded = np.clip(np.rint(weights * frames[:1].astype(np.float32) + (1 - weights) * tail), 0, 255)
    return np.concatenate([frames[: count - overlap], faded.astype(np.uint8)], axis=0)
