"""SSIM (``media.quality.ssim``) and the x264 preset of ``encode_clip`` (``media.encode``): what the encode-preset
benchmark's quality floor and the speed presets' encodes rest on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

from dreamreel.media.encode import encode_clip
from dreamreel.media.quality import SSIM_SIGMA, SSIM_WINDOW, ssim
from dreamreel.media.x264 import LIBX264_PRESETS, X264_PRESETS


def textured(height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    """A smooth gradient with blobs: structure for SSIM to see (not flat, not pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = 60 + 1.2 * x + 0.8 * y + 40 * np.sin(x / 5.0) * np.cos(y / 7.0) + rng.normal(0, 3, (height, width))
    return np.clip(image, 0, 255).astype(np.uint8)


def noisy(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def brute_force_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s definition written out per window position, in float64: the reference for the fast one."""
    offsets = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
    g = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(a.shape[0] - SSIM_WINDOW + 1):
        for j in range(a.shape[1] - SSIM_WINDOW + 1):
            px, py = x[i : i + SSIM_WINDOW, j : j + SSIM_WINDOW], y[i : i + SSIM_WINDOW, j : j + SSIM_WINDOW]
            mx, my = (window * px).sum(), (window * py).sum()
            vx, vy = (window * (px - mx) ** 2).sum(), (window * (py - my) ** 2).sum()
            cov = (window * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_of_identical_images_is_one() -> None:
    image = textured()
    assert ssim(image, image) == 1.0
    assert ssim(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)) == 1.0


def test_ssim_falls_as_noise_grows_and_is_symmetric() -> None:
    image = textured()
    light, heavy = noisy(image, 4), noisy(image, 25)
    assert 0.9 < ssim(image, light) < 1.0
    assert ssim(image, heavy) < ssim(image, light) - 0.1
    assert ssim(image, heavy) == ssim(heavy, image)


def test_ssim_matches_the_definition_window_by_window() -> None:
    image = textured(32, 40)
    other = noisy(image, 12)
    assert ssim(image, other) == pytest.approx(brute_force_ssim(image, other), abs=1e-5)


def test_ssim_refuses_mismatched_or_tiny_images() -> None:
    with pytest.raises(ValueError, match="one shape"):
        ssim(np.zeros((20, 20), np.uint8), np.zeros((20, 22), np.uint8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((8, 30), np.uint8), np.zeros((8, 30), np.uint8))


@dataclass
class Frames:
    """A silent clip of moving gradients: a ``media.encode.FrameStream``."""

    width: int = 96
    height: int = 64
    fps: int = 24
    total: int = 12
    loop: bool = False
    native: np.ndarray = field(default_factory=lambda: np.stack(
        [np.dstack([np.roll(textured(48, 64, seed=0), 2 * k, axis=1)] * 3) for k in range(12)]))

    @property
    def frames(self) -> Iterator[np.ndarray]:
        return iter(self.native)


def x264_settings(path: Path) -> bytes:
    """The options string x264 writes into the stream's SEI (``... options: cabac=1 ref=1 ...``)."""
    data = path.read_bytes()
    start = data.index(b"options: ")
    return data[start : data.index(b"\x00", start)]


def test_encode_clip_with_a_preset_writes_a_playable_mp4_encoded_with_it(tmp_path: Path) -> None:
    clip = Frames()
    fast = encode_clip(clip, tmp_path / "fast.mp4", preset="ultrafast").video
    default = encode_clip(Frames(), tmp_path / "default.mp4").video
    for written in (fast, default):
        with av.open(str(written.path)) as container:
            stream = container.streams.video[0]
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            assert stream.codec_context.name == "h264"
        assert len(decoded) == clip.total and decoded[0].shape == (clip.height, clip.width, 3)
    # ultrafast turns CABAC off; today's veryfast keeps it: the preset reached x264.
    assert b"cabac=0" in x264_settings(fast.path)
    assert b"cabac=1" in x264_settings(default.path)


def test_encode_clip_refuses_an_unknown_preset_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown libx264 preset 'warp'.*ultrafast, superfast, veryfast"):
        encode_clip(Frames(), tmp_path / "clip.mp4", preset="warp")
    assert list(tmp_path.iterdir()) == []


def test_every_speed_preset_maps_to_a_libx264_preset() -> None:
    assert set(X264_PRESETS) == {"quality", "balanced", "fast"}
    assert set(X264_PRESETS.values()) <= set(LIBX264_PRESETS)
    assert X264_PRESETS["quality"] == "veryfast"  # today's encode, unchanged
