"""Read an earlier generation's MP4 back as frames: whole (to deliver it inside an extension) or a few
sampled at the model's native rate (to condition the model on it).

Decoding streams frame by frame; only the frames asked for are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from dreamreel.media.images import fit_to_aspect
from dreamreel.media.probe import iter_frames


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    return fit_to_aspect(Image.fromarray(frame), width, height, "crop")


def iter_clip_frames(path: str | Path, width: int, height: int) -> Iterator[np.ndarray]:
    """Every frame of ``path``, fitted (centre crop + resize) to ``width x height``."""
    for frame in iter_frames(path):
        yield _fit(frame, width, height)


def sample_clip(
    path: str | Path, *, end: Literal["head", "tail"], count: int, stride: int, width: int, height: int
) -> np.ndarray:
    """``count`` frames ``stride`` apart from the start (``head``) or ending on the last frame (``tail``),
    in playback order, fitted to ``width x height``; fewer when the clip is shorter (stride shrinks)."""
    span = (count - 1) * stride + 1
    if end == "head":
        kept: list[np.ndarray] = []
        for frame in iter_frames(path):
            kept.append(frame)
            if len(kept) >= span:
                break
    else:
        kept = list(deque(iter_frames(path), maxlen=span))
    if not kept:
        raise ValueError(f"{path} has no decodable frames")
    if len(kept) < span:
        stride = max(1, (len(kept) - 1) // max(1, count - 1))
    indices = [i * stride for i in range(count)] if end == "head" else \
        [len(kept) - 1 - (count - 1 - i) * stride for i in range(count)]
    indices = [min(max(i, 0), len(kept) - 1) for i in indices]
    return np.stack([_fit(kept[i], width, height) for i in indices])
