"""A virtual camera: pan, tilt, zoom or orbit applied to a generated clip's frames.

Why: a camera concept must move the camera, and a model that never learned to (the embedded one: its
flow follows the caption's camera words on about one clip in ten, ``bench/bench_concepts.py``) still
draws a scene a camera can move over. Each frame is resampled through a moving window, the 2-D move a
camera makes over flat scenery: a pan or tilt slides the window, a zoom scales it, an orbit shears it
(the top and bottom of the frame slide opposite ways, the parallax of a camera circling a pivot row).
The embedded model's world renders its camera moves the same way (``world/layout.py``), so the moves
read back as the concept named them (``tests/unit/test_camera.py``).

The window has to stay inside the generated frame: a pan, tilt or orbit looks through a window that
is ``1 - travel`` of the frame all clip long (a constant slight zoom), and a zoom starts or ends on
the full frame. Moves are about half the world's nominal ones (a pan travels 0.2 of the short side where
the world's travels 0.35; an orbit shears 0.25 where the world's shears 0.4), so the window loses at most a
quarter of the frame's width or height; a zoom is the world's 1.5x. Larger moves read back worse on the
embedded model's clips, smaller ones no better (``docs/benchmarks.md``, "Camera concepts").
Moves run at constant speed from the first frame to the last, like the world's.

The model under a virtual camera is prompted for a still camera (``core.concepts.model_prompt``): a steady
scene is what a moving window reads well over. A model that follows camera words itself (LTX-Video, Wan)
is not given a virtual camera: the concept reaches it as a prompt clause only. ``camera_moves`` in a
model's ``dreamreel.json`` says which.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PAN_TRAVEL = 0.2
"""Pan / tilt: how far the window slides over the clip, in short sides of the frame."""
ZOOM_FACTOR = 1.5
"""Zoom in / out: magnification between the first and last frame."""
ORBIT_SHEAR = 0.25
"""Orbit: how far the top and bottom rows slide apart over the clip, opposite ways, in short sides."""

MOVES = ("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "orbit_left", "orbit_right")
"""The moves this camera makes, named as ``core.concepts.CameraConcept.camera`` names them."""


def shows_whole_frame(move: str) -> tuple[bool, bool]:
    """(at the first frame, at the last): whether ``move``'s window is the whole frame there, so a clip
    pinned at that end (a keyframe image, an extended clip) still meets it exactly. A zoom in starts on
    the whole frame and a zoom out ends on it; a pan, tilt or orbit looks through a smaller window
    throughout."""
    return move == "zoom_in", move == "zoom_out"


def window(move: str, progress: float, width: int, height: int) -> tuple[float, float, float, float, float, float]:
    """PIL affine coefficients ``(a, b, c, d, e, f)``: output pixel ``(x, y)`` looks at source pixel
    ``(a*x + b*y + c, d*x + e*y + f)``, at ``progress`` in [0, 1] of ``move`` on a ``width x height`` frame."""
    if move not in MOVES:
        raise ValueError(f"unknown camera move {move!r}; known: {', '.join(MOVES)}")
    short = min(width, height)
    travel = PAN_TRAVEL * short
    scale, shift_x, shift_y, shear = 1.0, 0.0, 0.0, 0.0
    if move in ("pan_left", "pan_right"):  # the camera turns left: the window slides left, the scene right
        scale = 1 - travel / width
        shift_x = travel * (0.5 - progress) * (1 if move == "pan_left" else -1)
    elif move in ("tilt_up", "tilt_down"):  # the camera tilts up: the window slides up, the scene down
        scale = 1 - travel / height
        shift_y = travel * (0.5 - progress) * (1 if move == "tilt_up" else -1)
    elif move in ("zoom_in", "zoom_out"):
        magnification = ZOOM_FACTOR ** (progress if move == "zoom_in" else 1 - progress)
        scale = 1 / magnification
    else:  # rows slide by shear * (their height from the middle): ORBIT_SHEAR / 2 short sides at the edges
        scale = 1 - ORBIT_SHEAR * short / width
        shear = ORBIT_SHEAR * short / height * progress * (-1 if move == "orbit_left" else 1)
    centre_x, centre_y = width / 2, height / 2
    # source = centre + scale * (out - centre) + shift, plus the shear sliding each row by its height
    a, b = scale, shear
    c = centre_x - scale * centre_x - shear * centre_y + shift_x
    e = scale
    f = centre_y - scale * centre_y + shift_y
    return a, b, c, 0.0, e, f


def move_camera(frames: np.ndarray, move: str) -> np.ndarray:
    """``frames`` (``(F, h, w, 3)`` uint8) seen through the moving window of ``move``, same shape."""
    count, height, width = frames.shape[:3]
    progress = np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        coefficients = window(move, float(progress[index]), width, height)
        picture = Image.fromarray(frame).transform((width, height), Image.Transform.AFFINE, coefficients,
                                                   resample=Image.Resampling.BICUBIC)
        out[index] = np.asarray(picture)
    return out


def move_layer(layer: np.ndarray, move: str, progress: float) -> np.ndarray:
    """A float ``(h, w, C)`` layer (signed: a joint's correction, ``media.seam``) seen through ``move``'s
    window at ``progress``, so that it moves with the scene the camera moves over.

    Bilinear per channel: PIL's float images are single-channel, and a correction is smooth enough."""
    height, width = layer.shape[:2]
    coefficients = window(move, progress, width, height)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(layer[..., channel], dtype=np.float32)).transform(
            (width, height), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR))
        for channel in range(layer.shape[2])
    ]
    return np.stack(channels, axis=-1)
