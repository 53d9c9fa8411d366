"""Frame-comparison numbers shared by the eval and the benchmarks (one definition, so they agree)."""

from __future__ import annotations

import numpy as np

IDENTICAL_PSNR = 99.0
"""Reported for identical images, where PSNR is infinite."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
"""Wang et al. (2004)'s constants: an 11x11 Gaussian window of sigma 1.5, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (or stacks) of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return IDENTICAL_PSNR if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) of two single-channel images of the same ``(H, W)`` shape.

    The standard form: local means, variances and covariance under an 11x11 Gaussian window (sigma 1.5),
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = data_range`` (255 for 8-bit), averaged over the
    positions where the whole window lies inside the image ("valid", as the reference MATLAB code does).
    1.0 exactly for identical images; symmetric in ``a`` and ``b``. Pass luma (a Y plane, or a grey image),
    the usual way to score video: colour SSIM is not one agreed number.

    In float32 with a separable filter in plain numpy (11 shifted multiply-adds a direction): about a tenth of
    a second a 1080p frame, with no SciPy needed.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two (H, W) images of one shape, got {a.shape} and {b.shape}")
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape}")
    x = a.astype(np.float32)
    y = b.astype(np.float32)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _gaussian_filter(x), _gaussian_filter(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = _gaussian_filter(x * x) - mu_xx
    var_y = _gaussian_filter(y * y) - mu_yy
    cov = _gaussian_filter(x * y) - mu_xy
    numerator = (2 * mu_xy + c1) * (2 * cov + c2)
    denominator = (mu_xx + mu_yy + c1) * (var_x + var_y + c2)
    return float(np.mean(numerator / denominator, dtype=np.float64))


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2
    weights = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return (weights / weights.sum()).astype(np.float32)


_WINDOW = _gaussian_window()


def _gaussian_filter(image: np.ndarray) -> np.ndarray:
    """``image`` under the normalised 11x11 Gaussian, valid positions only: ``(H - 10, W - 10)``."""
    rows = image.shape[0] - SSIM_WINDOW + 1
    cols = image.shape[1] - SSIM_WINDOW + 1
    vertical = _WINDOW[0] * image[:rows]
    for k in range(1, SSIM_WINDOW):
        vertical += _WINDOW[k] * image[k : k + rows]
    out = _WINDOW[0] * vertical[:, :cols]
    for k in range(1, SSIM_WINDOW):
        out += _WINDOW[k] * vertical[:, k : k + cols]
    return out
