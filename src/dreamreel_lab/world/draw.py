"""Draw a :class:`~dreamreel_lab.world.spec.Scene` as frames: ``draw_scene``.

Why it is built this way: training renders clips on the fly on a 2-core CPU, so a 160x96x41
clip must cost a few tens of milliseconds. The scenery is therefore painted *once* per clip as
a texture covering everything the camera will see, and each frame is a single resample of it
(:mod:`.scenery`).
Objects are drawn from signed distances (:mod:`.geometry`) only inside their bounding boxes,
for a group of frames at a time, which gives anti-aliased edges at any size without
supersampling. Everything is a function of the scene (seed included), so the same scene,
size and frame count always give the same bytes.
"""

from __future__ import annotations

import math

import numpy as np

from dreamreel_lab.world.geometry import extent, signed_distance
from dreamreel_lab.world.layout import ObjectTrack, layout_clip
from dreamreel_lab.world.scenery import draw_scenery
from dreamreel_lab.world.spec import ObjectSpec, Scene
from dreamreel_lab.world.vocab import Colour

OUTLINE_FRACTION = 0.07
"""Outline width as a fraction of the object's radius (at least 0.8 px): keeps small objects crisp."""
_FRAMES_PER_BATCH = 8


def draw_scene(scene: Scene, width: int, height: int, frames: int, fps: float = 8) -> np.ndarray:
    """The clip as ``(frames, height, width, 3)`` uint8 RGB."""
    return _render(scene, width, height, frames, fps, with_mask=False)[0]


def draw_scene_and_mask(
    scene: Scene, width: int, height: int, frames: int, fps: float = 8
) -> tuple[np.ndarray, np.ndarray]:
    """The clip and where its objects changed the scenery, ``(frames, height, width)`` bool.

    Training uses the mask to weight its losses: objects cover a few per cent of the pixels but are
    what a prompt is about (and what the analyzer reads).
    """
    clip, mask = _render(scene, width, height, frames, fps, with_mask=True)
    assert mask is not None
    return clip, mask


def _render(
    scene: Scene, width: int, height: int, frames: int, fps: float, *, with_mask: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    layout = layout_clip(scene, width, height, frames)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    draw_scenery(out, scene.background, scene.seed, layout, scene.camera, fps)
    scenery = out.copy() if with_mask else None
    for obj, track in zip(scene.objects, layout.objects, strict=True):
        _draw_object(out, obj, track)
    mask = None if scenery is None else (out != scenery).any(axis=-1)
    return out, mask


def _outline_rgb(colour: Colour) -> np.ndarray:
    fill = np.asarray(colour.rgb, dtype=np.float32)
    if colour is Colour.BLACK:
        return np.full(3, 115.0, dtype=np.float32)  # lighter rim, still dark enough not to thin it when blurred
    return fill * 0.35


def _draw_object(out: np.ndarray, obj: ObjectSpec, track: ObjectTrack) -> None:
    frames, height, width = out.shape[:3]
    fill = np.asarray(obj.colour.rgb, dtype=np.float32)
    edge = _outline_rgb(obj.colour)
    reach = max(extent(obj.shape))
    for start in range(0, frames, _FRAMES_PER_BATCH):
        idx = np.arange(start, min(start + _FRAMES_PER_BATCH, frames))
        radius = track.radius[idx].astype(np.float32)
        half = math.ceil(float(radius.max()) * reach + 2)
        left = np.floor(track.x[idx]).astype(np.int64) - half
        top = np.floor(track.y[idx]).astype(np.int64) - half
        grid = np.arange(2 * half, dtype=np.float32) + 0.5
        # Pixel-centre offsets from the object's centre, in radii, for every frame of the batch.
        gx = (left - track.x[idx]).astype(np.float32)[:, None, None] + grid[None, None, :]
        gy = (top - track.y[idx]).astype(np.float32)[:, None, None] + grid[None, :, None]
        r = radius[:, None, None]
        distance = signed_distance(obj.shape, gx / r, gy / r) * r  # pixels, negative inside
        outline = np.maximum(0.8, OUTLINE_FRACTION * r)
        alpha = np.clip(0.5 - distance, 0.0, 1.0)
        inner = np.clip(0.5 - (distance + outline), 0.0, 1.0)
        colour = edge + (fill - edge) * inner[..., None]
        for j, frame in enumerate(idx):
            _composite(out[frame], colour[j], alpha[j], int(left[j]), int(top[j]), width, height)


def _composite(
    frame: np.ndarray, colour: np.ndarray, alpha: np.ndarray, left: int, top: int, width: int, height: int
) -> None:
    """Blend a sprite into ``frame`` at ``(left, top)``, clipped to the frame."""
    size = alpha.shape[0]
    sx0, sy0 = max(0, -left), max(0, -top)
    sx1, sy1 = min(size, width - left), min(size, height - top)
    if sx0 >= sx1 or sy0 >= sy1:
        return
    region = frame[top + sy0 : top + sy1, left + sx0 : left + sx1]
    a = alpha[sy0:sy1, sx0:sx1, None]
    blended = region * (1.0 - a) + colour[sy0:sy1, sx0:sx1] * a
    region[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
