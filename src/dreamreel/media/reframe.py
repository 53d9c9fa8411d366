"""A reframed frame: the source's own pixels inside its window, the model's outside, joined at the border.

The model's frame inside the window is its copy of the source (held there while denoising, then VAE-decoded
at the native size and scaled up), close to but not the source; the delivered window is the source itself.
Left alone, the border would show a step: the model's outside continues *its* copy. So the difference
between the source and the model's copy, taken at the window's edge, is carried outward onto the model's
pixels and faded along a raised cosine over :data:`FADE_SHARE` of the frame's short side (``media/seam.py``
does the same along time at a clip's joint). Only the band around the window is touched.
"""

from __future__ import annotations

import numpy as np

from dreamreel.core.edits import Window
from dreamreel.media.encode import scale_rgb

FADE_SHARE = 1 / 16
"""How far outside the window the border correction reaches, as a share of the output's short side."""


class WindowPaste:
    """Composites frames for one reframe (the index maps and weights are made once, used per frame)."""

    def __init__(self, width: int, height: int, window: Window, fade_px: int | None = None) -> None:
        self.window, self.width, self.height = window, width, height
        fade = fade_px if fade_px is not None else max(2, round(min(width, height) * FADE_SHARE))
        # The band: the window grown by the fade, inside the frame.
        self.bx0, self.by0 = max(0, window.x0 - fade), max(0, window.y0 - fade)
        self.bx1, self.by1 = min(width, window.x1 + fade), min(height, window.y1 + fade)
        ys, xs = np.arange(self.by0, self.by1), np.arange(self.bx0, self.bx1)
        near_y, near_x = np.clip(ys, window.y0, window.y1 - 1), np.clip(xs, window.x0, window.x1 - 1)
        distance = np.hypot((ys - near_y)[:, None], (xs - near_x)[None, :])
        weight = 0.5 * (1 + np.cos(np.pi * np.minimum(distance / fade, 1.0)))
        self.weight = weight.astype(np.float32)[..., None]
        self.rows = (near_y - window.y0)[:, None]
        self.cols = (near_x - window.x0)[None, :]

    def __call__(self, frame: np.ndarray, source: np.ndarray) -> np.ndarray:
        """``frame`` (the model's, any size: scaled to the output's with the encoder's filter) with ``source``
        (window size) pasted and joined; uint8 at the output size."""
        w = self.window
        if frame.shape[:2] != (self.height, self.width):
            frame = scale_rgb(frame, self.width, self.height)
        if source.shape[:2] != (w.height, w.width):
            raise ValueError(f"source frame is {source.shape[1]}x{source.shape[0]}, the window {w.width}x{w.height}")
        out = frame.copy()
        inside = frame[w.y0 : w.y1, w.x0 : w.x1].astype(np.float32)
        difference = source.astype(np.float32) - inside
        band = out[self.by0 : self.by1, self.bx0 : self.bx1].astype(np.float32)
        band += difference[self.rows, self.cols] * self.weight
        out[self.by0 : self.by1, self.bx0 : self.bx1] = np.clip(band + 0.5, 0, 255).astype(np.uint8)
        out[w.y0 : w.y1, w.x0 : w.x1] = source
        return out
