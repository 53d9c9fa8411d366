"""What does a clip show? ``analyze_clip`` reads back the world's attributes from pixels.

Why a classical analyzer: prompt adherence of the model is measured by rendering nothing but
asking "does the generated clip show the prompted colour, shape, motion, background and
camera move?", and the answer must not come from another learned model that could share the
generator's blind spots. Knowing the world's palette, scenery and silhouettes makes each
question a small, checkable image-processing step:

1. background: which scenery's colours explain the pixels (:mod:`.colour_model`);
2. objects: pixels nearer a palette colour than to that scenery, cleaned of specks, grouped
   into blobs (:mod:`.blobs`) and linked over time into tracks (:mod:`.tracks`);
3. camera: phase correlation of the scenery with objects masked out (:mod:`.camera_motion`);
4. per object: colour (median interior pixel), shape (template overlap, :mod:`.shape_match`)
   and motion (track relative to the camera, :mod:`.motion_classify`).

Inputs of any size are first reduced to a ~112-pixel short side and at most 24 frames: the
world's attributes are all visible at that scale, and it keeps analysis at tens of ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

import numpy as np
from PIL import Image

from dreamreel_lab.world.blobs import Blobs, find_blobs
from dreamreel_lab.world.camera_motion import CameraMotion, estimate_camera
from dreamreel_lab.world.colour_model import classify_background, object_labels, quantise
from dreamreel_lab.world.motion_classify import classify_motion
from dreamreel_lab.world.shape_match import MAX_VIEWS, classify_shape
from dreamreel_lab.world.spec import Scene
from dreamreel_lab.world.tracks import Track, link_tracks, track_colour
from dreamreel_lab.world.vocab import Background, Camera, Colour, Motion, Shape

ANALYSIS_SHORT_SIDE = 128
"""Clips with a larger short side are downscaled (to ~112 px) before analysis."""
MAX_FRAMES = 24
ATTRIBUTES = ("colour", "shape", "motion", "background", "camera")


@dataclass(frozen=True)
class ObjectAnalysis:
    colour: Colour
    shape: Shape
    motion: Motion
    presence: float = 1.0
    """Fraction of frames the object was found in."""


@dataclass(frozen=True)
class Analysis:
    background: Background
    camera: Camera
    objects: tuple[ObjectAnalysis, ...]
    camera_motion: CameraMotion | None = field(default=None, compare=False, repr=False)
    """The measured camera totals behind ``camera`` (for diagnostics)."""


def _normalise(frames: np.ndarray) -> np.ndarray:
    """uint8 frames at analysis size; float frames in [0, 1] (a decoder's output) are scaled."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError("frames must be a non-empty (F, H, W, 3) array")
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating) and float(frames.max()) <= 1.0:
            frames = frames * 255.0
        frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    if len(frames) > MAX_FRAMES:
        frames = frames[np.round(np.linspace(0, len(frames) - 1, MAX_FRAMES)).astype(int)]
    height, width = frames.shape[1:3]
    short = min(height, width)
    if short > ANALYSIS_SHORT_SIDE:
        factor = short / 112
        size = (max(8, round(width / factor)), max(8, round(height / factor)))
        frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BOX)) for f in frames])
    return frames


def _despeckle(mask: np.ndarray) -> np.ndarray:
    """Drop foreground pixels with fewer than two 4-neighbours: noise specks and 1-px lines."""
    m = mask.astype(np.uint8)
    count = np.zeros_like(m)
    count[:, 1:] += m[:, :-1]
    count[:, :-1] += m[:, 1:]
    count[:, :, 1:] += m[:, :, :-1]
    count[:, :, :-1] += m[:, :, 1:]
    return mask & (count >= 2)


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        grown[:, :, 1:] |= out[:, :, :-1]
        grown[:, :, :-1] |= out[:, :, 1:]
        out = grown
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[:, :, 1:] &= mask[:, :, :-1]
    out[:, :, :-1] &= mask[:, :, 1:]
    return out


def _clean(mask: np.ndarray) -> np.ndarray:
    """Despeckle, then close one-pixel cracks so a thin, blurred ring stays one blob."""
    return _erode(_dilate(_despeckle(mask), 1))


def _views(track: Track, blobs: Blobs) -> list[np.ndarray]:
    """The track's blob masks, biggest first, skipping blobs cut by the frame edge."""
    order = track.blobs[np.argsort(-blobs.area[track.blobs])]
    inside = [
        b
        for b in order
        if blobs.x0[b] > 0 and blobs.y0[b] > 0 and blobs.x1[b] < blobs.width and blobs.y1[b] < blobs.height
    ]
    return [blobs.mask(int(b))[0] for b in (inside or list(order))[:MAX_VIEWS]]


def analyze_clip(frames: np.ndarray) -> Analysis:
    """Background, camera move and objects (colour, shape, motion) shown by RGB ``(F, H, W, 3)`` frames.

    Frames are uint8, or floats in [0, 1]. Objects are listed most prominent first; at most 4.
    """
    frames = _normalise(frames)
    count, height, width = frames.shape[:3]
    codes = quantise(frames)
    background, _ = classify_background(codes)
    foreground = _clean(object_labels(background)[codes] > 0)
    blobs = find_blobs(foreground)
    stride = max(1, min(2, count // 12))  # camera moves are smooth: every other frame is plenty
    sub = frames[::stride]
    grey = (sub[..., 0].astype(np.float32) + sub[..., 1] + sub[..., 2]) / 3
    # A 4-px margin (rather than 2) keeps a soft object's halo out of the scenery: once the
    # scenery's still part is removed, a halo that travels with the object is otherwise the only
    # coherent thing left in a flickering still shot, and would be read as a camera move.
    camera = estimate_camera(grey, _dilate(foreground[::stride], 4)).per_frame_of(stride)
    objects = []
    for track in link_tracks(blobs, count)[:4]:
        b = track.blobs
        motion = classify_motion(track.frames, blobs.cx[b], blobs.cy[b], blobs.area[b], camera, count, width, height)
        shape, _ = classify_shape(_views(track, blobs))
        objects.append(
            ObjectAnalysis(track_colour(track, blobs, frames, background), shape, motion, len(track) / count)
        )
    return Analysis(background, camera.camera, tuple(objects), camera)


def score(analysis: Analysis, scene: Scene) -> dict[str, bool]:
    """Per attribute, whether the analysis agrees with the scene that was asked for.

    Scene objects are matched to analysed objects one-to-one so as to agree on the most
    attributes (colour counting most); an object attribute is correct only if it is correct
    for every scene object, and a scene object with no match gets it wrong. Only the most
    prominent analysed objects are candidates, as many as the prompt asked for: a clip of
    speckle holds many blobs, and letting the best of them match made pure noise (a random
    model) score 54 % on shape.
    """
    found = list(analysis.objects)[: len(scene.objects)]
    best: tuple[float, list[ObjectAnalysis | None]] = (-1.0, [])
    slots = found + [None] * len(scene.objects)
    for chosen in permutations(range(len(slots)), len(scene.objects)):
        pairs = [slots[i] for i in chosen]
        value = 0.0
        for obj, seen in zip(scene.objects, pairs, strict=True):
            if seen is not None:
                value += 1.5 * (seen.colour == obj.colour) + (seen.shape == obj.shape) + (seen.motion == obj.motion)
        if value > best[0]:
            best = (value, pairs)
    matched = best[1]

    def all_objects(attribute: str) -> bool:
        return all(
            seen is not None and getattr(seen, attribute) == getattr(obj, attribute)
            for obj, seen in zip(scene.objects, matched, strict=True)
        )

    return {
        "colour": all_objects("colour"),
        "shape": all_objects("shape"),
        "motion": all_objects("motion"),
        "background": analysis.background == scene.background,
        "camera": analysis.camera == scene.camera,
    }
