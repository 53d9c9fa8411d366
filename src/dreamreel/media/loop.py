"""Seamless loops by cross-fading a clip's tail into its head.

fal describes Ray 2's ``loop`` as "end of video is blended with the beginning"; this is that blend. A
clip ``x`` of ``F`` frames and an overlap ``L`` become ``F - L`` frames: the first ``L`` are
``w*x[j] + (1-w)*x[F-L+j]`` with ``w`` rising along a raised cosine from near 0 to near 1; the rest
are ``x[L:F-L]``. Played in a loop, the last frame ``x[F-L-1]`` is followed by (almost only)
``x[F-L]``, its natural successor, and the head then fades into the clip's own beginning: no cut
anywhere.

Why a raised cosine, not a straight ramp: with ``w = (j+1)/(L+1)`` every blended step, the wrap
included, carries ``1/(L+1)`` of the difference between head and tail, so the wrap was 2.25x the
clip's median step on the embedded model (``bench/bench_controls.py``, session 10). The cosine starts
and ends the fade slowly (``w[0]`` is 3 % for ``L = 8``), where the loop's restart and the fade's
end are, and fades fastest mid-way, where that step is ``pi/2`` times the straight ramp's.
"""

from __future__ import annotations

import numpy as np


def blend_loop(frames: np.ndarray, overlap: int) -> np.ndarray:
    """Return ``frames`` (``(F, h, w, 3)`` uint8) shortened by ``overlap`` and cross-faded into a cycle."""
    count = frames.shape[0]
    if overlap < 1 or 2 * overlap > count:
        raise ValueError(f"overlap must be in 1..{count // 2} for {count} frames, got {overlap}")
    phase = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
    weights = 0.5 - 0.5 * np.cos(np.pi * phase)
    weights = weights[:, None, None, None]
    head = frames[:overlap].astype(np.float32)
    tail = frames[count - overlap :].astype(np.float32)
    blended = np.clip(np.rint(weights * head + (1 - weights) * tail), 0, 255).astype(np.uint8)
    return np.concatenate([blended, frames[overlap : count - overlap]], axis=0)
