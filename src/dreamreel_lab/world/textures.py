"""Procedural scenery: one texture (or a short loop of them, for water) per clip.

Why textures everywhere: a camera move is only visible through the scenery it slides, so
every background, even ``plain``, carries mid-frequency detail (mottle, blades, ripples,
stars) in every part of the frame; otherwise a pan over a flat colour would look static and
the analyzer could not see it either. The detail stays low-contrast and inside each
background's own colour range, which is what keeps objects of any allowed colour
distinguishable (see :data:`dreamreel_lab.world.vocab.FORBIDDEN` for the pairs that are not).

Noise is defined on a fixed world-unit lattice seeded by the scene, and only *sampled* at
the output resolution, so the same scene looks the same at 160x96 and 960x540. Lattices are
upsampled with Pillow's bicubic resize (C speed): training renders clips on the fly.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PIL import Image

from dreamreel_lab.world.vocab import Background

Box = tuple[float, float, float, float]
"""World-unit rectangle (x0, y0, x1, y1) covered by a texture."""

_DOMAIN = 2.0
"""Noise lattices span [-_DOMAIN, _DOMAIN]^2 world units: any aspect up to 21:9 plus camera travel."""

KEY_COLOURS: dict[Background, dict[str, tuple[int, int, int]]] = {
    Background.SKY: {"top": (100, 160, 225), "bottom": (175, 210, 240), "cloud": (238, 242, 250)},
    Background.NIGHT: {"top": (8, 10, 32), "bottom": (26, 30, 68), "nebula": (50, 30, 80), "star": (225, 215, 150)},
    Background.SUNSET: {
        "top": (85, 45, 95),
        "middle": (178, 82, 108),
        "bottom": (240, 146, 90),
        "cloud": (120, 60, 100),
    },
    Background.GRASS: {"dark": (50, 100, 35), "light": (105, 150, 50)},
    Background.SAND: {"dark": (185, 155, 105), "light": (235, 212, 165)},
    Background.WATER: {"deep": (10, 60, 95), "mid": (30, 110, 140), "glint": (150, 205, 215)},
    Background.PLAIN: {"grey": (128, 128, 128)},
}
"""The colours each background is mixed from (also what the analyzer knows about scenery)."""

WATER_PHASES = 8
WATER_PERIOD_S = 2.0
"""Water glints cycle through ``WATER_PHASES`` looks every ``WATER_PERIOD_S`` seconds."""


class _Sampler:
    """Value noise on world-anchored lattices, sampled over one texture's box and size."""

    def __init__(self, seed: int, box: Box, size: tuple[int, int]):
        self.seed, self.box, self.size = seed, box, size
        x0, y0, x1, y1 = box
        width, height = size
        self.x = (x0 + (np.arange(width, dtype=np.float32) + 0.5) * (x1 - x0) / width)[None, :]
        self.y = (y0 + (np.arange(height, dtype=np.float32) + 0.5) * (y1 - y0) / height)[:, None]

    def noise(self, layer: int, cell_x: float, cell_y: float | None = None) -> np.ndarray:
        """Smooth noise in about [0, 1] with features ``cell`` world units apart."""
        cell_y = cell_x if cell_y is None else cell_y
        x0, y0, x1, y1 = self.box
        # The lattice is fixed in the world (same texture at every output size), and only grows
        # for frames wider than any standard aspect ratio needs.
        domain = max(_DOMAIN, float(np.ceil(max(map(abs, self.box)))) + 0.5)
        nx, ny = int(np.ceil(2 * domain / cell_x)) + 4, int(np.ceil(2 * domain / cell_y)) + 4
        lattice = np.random.default_rng([self.seed, layer]).random((ny, nx), dtype=np.float32)
        # Lattice point j sits at world -domain + j*cell, i.e. Pillow coordinate j + 0.5.
        pil_box = (
            (x0 + domain) / cell_x + 0.5,
            (y0 + domain) / cell_y + 0.5,
            (x1 + domain) / cell_x + 0.5,
            (y1 + domain) / cell_y + 0.5,
        )
        image = Image.fromarray(lattice).resize(self.size, Image.Resampling.BICUBIC, box=pil_box)
        return np.asarray(image, dtype=np.float32)


def _rgb(colour: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(colour, dtype=np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[..., None]


def _smoothstep(lo: float, hi: float, v: np.ndarray) -> np.ndarray:
    t = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _vertical(s: _Sampler, half_h: float) -> np.ndarray:
    """0 at the top edge of the reference frame, 1 at its bottom edge (clipped beyond)."""
    return np.clip((s.y + half_h) / (2 * half_h), 0.0, 1.0) + np.zeros_like(s.x)


def _sky(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float) -> np.ndarray:
    base = _mix(_rgb(k["top"]), _rgb(k["bottom"]), _vertical(s, half_h))
    field = 0.55 * s.noise(1, 0.45) + 0.3 * s.noise(2, 0.15) + 0.15 * s.noise(3, 0.1)
    haze = 0.6 * s.noise(4, 0.08) + 0.4 * s.noise(5, 0.2) - 0.5
    base = base * (1 + 0.22 * haze[..., None])
    return _mix(base, _rgb(k["cloud"]), 0.95 * _smoothstep(0.5, 0.68, field))


def _night(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float) -> np.ndarray:
    base = _mix(_rgb(k["top"]), _rgb(k["bottom"]), _vertical(s, half_h))
    base = _mix(base, _rgb(k["nebula"]), 0.7 * _smoothstep(0.45, 0.8, s.noise(1, 0.3)) * s.noise(2, 0.12))
    base = base * (1 + 0.4 * (s.noise(5, 0.09) - 0.5))[..., None]  # faint haze: texture between stars
    stars = _smoothstep(0.9, 0.98, s.noise(3, 0.05)) * (0.5 + 0.5 * s.noise(4, 0.2))
    return _mix(base, _rgb(k["star"]), np.clip(stars, 0, 1))


def _sunset(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float) -> np.ndarray:
    t = _vertical(s, half_h)
    upper = _mix(_rgb(k["top"]), _rgb(k["middle"]), np.clip(t / 0.55, 0, 1))
    base = _mix(upper, _rgb(k["bottom"]), np.clip((t - 0.55) / 0.45, 0, 1))
    streaks = 0.7 * s.noise(1, 0.5, 0.08) + 0.3 * s.noise(2, 0.2, 0.06)
    haze = 0.6 * s.noise(3, 0.08) + 0.4 * s.noise(4, 0.2) - 0.5
    base = base + 28.0 * haze[..., None]  # additive: the dark top needs as much texture as the glow
    return _mix(base, _rgb(k["cloud"]), 0.55 * _smoothstep(0.5, 0.7, streaks))


def _grass(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float) -> np.ndarray:
    blades = s.noise(1, 0.04, 0.14)
    patches = s.noise(2, 0.3)
    tufts = s.noise(3, 0.08)
    value = 0.5 * blades + 0.3 * patches + 0.2 * tufts
    return _mix(_rgb(k["dark"]), _rgb(k["light"]), _smoothstep(0.3, 0.7, value))


def _sand(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float) -> np.ndarray:
    warp = s.noise(1, 0.4)
    ripples = 0.5 + 0.5 * np.sin(2 * np.pi * (s.y / 0.12 + 0.25 * s.x / 0.12 + 3.0 * warp))
    value = 0.45 * ripples + 0.4 * s.noise(2, 0.06) + 0.15 * s.noise(3, 0.25)
    return _mix(_rgb(k["dark"]), _rgb(k["light"]), np.clip(value, 0, 1))


def _plain(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float) -> np.ndarray:
    mottle = 0.55 * s.noise(1, 0.08) + 0.3 * s.noise(2, 0.2) + 0.15 * s.noise(3, 0.4) - 0.5
    grey = _rgb(k["grey"]) * (1 + 0.45 * mottle[..., None])
    return grey


def _water(s: _Sampler, k: dict[str, tuple[int, int, int]], half_h: float, phases: int) -> list[np.ndarray]:
    crests = 0.6 * s.noise(1, 0.12, 0.06) + 0.4 * s.noise(2, 0.6, 0.12)
    base = _mix(_rgb(k["deep"]), _rgb(k["mid"]), _smoothstep(0.3, 0.7, crests))
    # Crest tops always catch some light (fixed in the world, so a camera move stays visible);
    # on top of that glints come and go, which is what makes the water look alive.
    highlight = _smoothstep(0.62, 0.78, crests)
    a, b = s.noise(3, 0.12, 0.06) - 0.5, s.noise(4, 0.12, 0.06) - 0.5
    on_crest = _smoothstep(0.5, 0.7, crests)
    looks = []
    for phase in range(phases):
        angle = 2 * math.pi * phase / phases  # Python floats: a NumPy float64 would promote the arrays
        glint = np.clip(3.0 * (math.cos(angle) * a + math.sin(angle) * b), 0, 1) * on_crest
        looks.append(_mix(base, _rgb(k["glint"]), np.clip(0.55 * highlight + 0.25 * glint, 0, 1)))
    return looks


def phase_count(background: Background) -> int:
    """How many distinct looks the background cycles through (water glints move)."""
    return WATER_PHASES if background is Background.WATER else 1


def phase_at(background: Background, frame: int, fps: float) -> int:
    """Which look frame ``frame`` shows at ``fps``."""
    if background is not Background.WATER:
        return 0
    return int(round(frame / fps / WATER_PERIOD_S * WATER_PHASES)) % WATER_PHASES


def render_background(
    background: Background, seed: int, box: Box, size: tuple[int, int], half_h: float
) -> list[np.ndarray]:
    """The scenery over ``box`` as ``size=(width, height)`` uint8 RGB images, one per phase.

    ``half_h`` is the frame's half height in world units: sky-like gradients span the frame.
    """
    sampler = _Sampler(seed, box, size)
    keys = KEY_COLOURS[background]
    if background is Background.WATER:
        looks = _water(sampler, keys, half_h, WATER_PHASES)
    else:
        painter = {
            Background.SKY: _sky,
            Background.NIGHT: _night,
            Background.SUNSET: _sunset,
            Background.GRASS: _grass,
            Background.SAND: _sand,
            Background.PLAIN: _plain,
        }[background]
        looks = [painter(sampler, keys, half_h)]
    return [np.clip(look + 0.5, 0, 255).astype(np.uint8) for look in looks]


@cache
def colour_samples(background: Background) -> tuple[np.ndarray, np.ndarray]:
    """The colours (N, 3) uint8 this background produces, with how often (N,) over several seeds.

    The analyzer uses these to tell scenery from objects and to classify the background;
    sampling the real textures keeps it honest when a texture recipe changes.
    """
    found = []
    for seed in range(3):
        for half_h in (0.5, 0.83):
            for look in render_background(background, seed, (-1.0, -half_h, 1.0, half_h), (96, 96), half_h):
                found.append(look.reshape(-1, 3))
    pixels = np.concatenate(found)
    # One representative per occupied 4-level cell keeps rare-but-real colours (stars, glints).
    cells, counts = np.unique(pixels // 4, axis=0, return_counts=True)
    return (cells * 4 + 2).astype(np.uint8), counts / counts.sum()
