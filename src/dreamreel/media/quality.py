"""Frame-comparison numbers shared by the eval and the benchmarks (one definition, so they agree)."""

from __future__ import annotations

import numpy as np

IDENTICAL_PSNR = 99.0
"""Reported for identical images, where PSNR is infinite."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (or stacks) of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return IDENTICAL_PSNR if mse == 0 else float(10 * np.log10(255.0**2 / mse))
