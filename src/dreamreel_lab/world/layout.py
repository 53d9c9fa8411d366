"""From a scene to where everything is on screen in every frame, for one output size.

Why separate from drawing: the renderer, the tests (is the object inside the frame?) and
anyone wanting per-frame ground truth (centres, radii, camera) need the same numbers.

Units. *World units* measure lengths in frame short sides (a 160x96 frame is 1.667 x 1
units) with the origin at the frame centre, x right and y down. A camera state is a centre
``(x, y)``, a magnification ``zoom`` and a horizontal ``shear``; a world point ``p`` appears
at ``(p - centre) * zoom`` (objects) and the scenery additionally shears by ``shear * y`` so
that an orbit slides far scenery (top rows) and near ground (bottom rows) in opposite
directions while the subject at the pivot depth stays put.

Every motion is defined over the clip's whole duration (progress ``u`` from 0 to 1), so a
41-frame and a 121-frame clip show the same movement, and its size is tied to the frame so it
is unambiguous: a sideways move crosses about half the frame, a pan shifts the scene by a
third of the short side, a zoom magnifies 1.5x. Paths are then placed (``place_x/place_y``)
inside the room the camera leaves, shrinking travel (and, for crowded two-object frames, the
camera move) until the whole silhouette stays on screen in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamreel_lab.world.geometry import extent
from dreamreel_lab.world.spec import ObjectSpec, Scene
from dreamreel_lab.world.vocab import DIRECTIONS, Camera, Motion

PAN_TRAVEL = 0.35
"""Pan/tilt: how far the scene slides over the clip, in short sides."""
ZOOM_FACTOR = 1.5
"""Zoom in/out: magnification ratio between the first and last frame."""
ORBIT_SHEAR = 0.4
"""Orbit: horizontal slide per unit of height from the pivot row (top and bottom edges of a
landscape frame move 0.2 short sides in opposite directions)."""
GROWTH = 2.0
"""Growing/shrinking: radius ratio between the ends of the clip."""
BOUNCES = 3
MARGIN = 0.03
SLOT_GAP = 0.04

_CAMERA_SCALES = (1.0, 0.75, 0.5)
_PATH_SCALES = (1.0, 0.85, 0.7, 0.55, 0.4)


@dataclass(frozen=True)
class CameraPath:
    """Per-frame camera state in world units (arrays of length ``frames``)."""

    x: np.ndarray
    y: np.ndarray
    zoom: np.ndarray
    shear: np.ndarray


@dataclass(frozen=True)
class ObjectTrack:
    """Per-frame on-screen centre and nominal radius of one object, in pixels.

    Pixel coordinates are continuous: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``.
    """

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray


@dataclass(frozen=True)
class ClipLayout:
    width: int
    height: int
    frames: int
    camera: CameraPath
    camera_scale: float
    """1.0 unless a crowded frame forced a gentler camera move."""
    objects: tuple[ObjectTrack, ...]

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


def progress(frames: int) -> np.ndarray:
    """Clip progress ``u`` in [0, 1] at each frame."""
    return np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)


def camera_path(camera: Camera, u: np.ndarray, scale: float = 1.0) -> CameraPath:
    zeros = np.zeros_like(u)
    x, y, shear, log_zoom = zeros, zeros, zeros, zeros
    travel = PAN_TRAVEL * scale * u
    if camera is Camera.PAN_LEFT:  # the camera turns left, so the scene slides right
        x = -travel
    elif camera is Camera.PAN_RIGHT:
        x = travel
    elif camera is Camera.TILT_UP:  # the camera tilts up, so the scene slides down
        y = -travel
    elif camera is Camera.TILT_DOWN:
        y = travel
    elif camera is Camera.ZOOM_IN:
        log_zoom = np.log(ZOOM_FACTOR) * scale * u
    elif camera is Camera.ZOOM_OUT:
        log_zoom = np.log(ZOOM_FACTOR) * scale * (1.0 - u)
    elif camera is Camera.ORBIT_LEFT:
        shear = -ORBIT_SHEAR * scale * u
    elif camera is Camera.ORBIT_RIGHT:
        shear = ORBIT_SHEAR * scale * u
    return CameraPath(x=x, y=y, zoom=np.exp(log_zoom), shear=shear)


def object_path(obj: ObjectSpec, u: np.ndarray, room: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World offset from the start point ``(dx, dy)`` and radius at each ``u``.

    ``room`` is the (width, height) in world units of the screen area the object lives in;
    travel distances are proportions of it so motions read the same at every aspect ratio.
    """
    room_w, room_h = room
    zeros = np.zeros_like(u)
    radius = np.full_like(u, obj.size)
    dx, dy = zeros, zeros
    if obj.motion in DIRECTIONS:
        ux, uy = DIRECTIONS[obj.motion]
        if ux and uy:  # diagonals travel equally on both axes so they read as 45 degrees
            dx = ux * 0.4 * min(room_w, room_h) * obj.speed * u
            dy = uy * 0.4 * min(room_w, room_h) * obj.speed * u
        else:
            dx = ux * 0.55 * room_w * obj.speed * u
            dy = uy * 0.55 * room_h * obj.speed * u
    elif obj.motion is Motion.BOUNCING:
        height = min(0.35 * room_h, 0.45) * obj.speed
        dy = -height * np.abs(np.sin(np.pi * BOUNCES * u))
    elif obj.motion is Motion.CIRCLING:
        rho = 0.18 * min(room_w, room_h) * obj.speed
        theta = -np.pi / 2 + (1 if obj.clockwise else -1) * 2 * np.pi * u
        dx = rho * np.cos(theta)
        dy = rho * (np.sin(theta) + 1.0)
    elif obj.motion is Motion.GROWING:
        radius = obj.size * GROWTH ** (u - 0.5)
    elif obj.motion is Motion.SHRINKING:
        radius = obj.size * GROWTH ** (0.5 - u)
    return dx, dy, radius


def _anchor_range(
    d: np.ndarray, ext_lo: np.ndarray, ext_hi: np.ndarray, centre: np.ndarray, zoom: np.ndarray, lo: float, hi: float
) -> tuple[float, float]:
    """The start coordinates keeping ``(anchor + d - centre) * zoom -/+ ext`` inside ``[lo, hi]``."""
    low = float(np.max((lo + ext_lo) / zoom - d + centre))
    high = float(np.min((hi - ext_hi) / zoom - d + centre))
    return low, high


def _slots(count: int, half_w: float, half_h: float) -> list[tuple[float, float, float, float]]:
    """Screen areas (x0, x1, y0, y1) in world units: two objects split the long axis."""
    full = (-half_w + MARGIN, half_w - MARGIN, -half_h + MARGIN, half_h - MARGIN)
    if count == 1:
        return [full]
    x0, x1, y0, y1 = full
    if half_w >= half_h:
        return [(x0, -SLOT_GAP / 2, y0, y1), (SLOT_GAP / 2, x1, y0, y1)]
    return [(x0, x1, y0, -SLOT_GAP / 2), (x0, x1, SLOT_GAP / 2, y1)]


def _place(
    obj: ObjectSpec, u: np.ndarray, cam: CameraPath, slot: tuple[float, float, float, float], *, force: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Screen centre (world units) and radius per frame, or None if the path cannot fit."""
    x0, x1, y0, y1 = slot
    dx, dy, radius = object_path(obj, u, (x1 - x0, y1 - y0))
    left, right, up, down = extent(obj.shape)
    r_screen = radius * cam.zoom
    for scale in _PATH_SCALES:
        ax = _anchor_range(dx * scale, left * r_screen, right * r_screen, cam.x, cam.zoom, x0, x1)
        ay = _anchor_range(dy * scale, up * r_screen, down * r_screen, cam.y, cam.zoom, y0, y1)
        fits = ax[0] <= ax[1] and ay[0] <= ay[1]
        if fits or (force and scale == _PATH_SCALES[-1]):
            anchor_x = ax[0] + obj.place_x * (ax[1] - ax[0]) if fits else (ax[0] + ax[1]) / 2
            anchor_y = ay[0] + obj.place_y * (ay[1] - ay[0]) if fits else (ay[0] + ay[1]) / 2
            qx = (anchor_x + dx * scale - cam.x) * cam.zoom
            qy = (anchor_y + dy * scale - cam.y) * cam.zoom
            return qx, qy, r_screen
    return None


def layout_clip(scene: Scene, width: int, height: int, frames: int) -> ClipLayout:
    """Camera path and on-screen object tracks of ``scene`` at ``width x height x frames``."""
    if width < 8 or height < 8 or frames < 1:
        raise ValueError("frames must be at least 8x8 and the clip at least one frame long")
    u = progress(frames)
    short = min(width, height)
    half_w, half_h = width / short / 2, height / short / 2
    slots = _slots(len(scene.objects), half_w, half_h)
    for attempt, cam_scale in enumerate(_CAMERA_SCALES):
        force = attempt == len(_CAMERA_SCALES) - 1
        cam = camera_path(scene.camera, u, cam_scale)
        placed = [_place(obj, u, cam, slot, force=force) for obj, slot in zip(scene.objects, slots, strict=True)]
        if all(p is not None for p in placed):
            break
    tracks = tuple(
        ObjectTrack(x=width / 2 + qx * short, y=height / 2 + qy * short, radius=r * short)
        for qx, qy, r in (p for p in placed if p is not None)
    )
    return ClipLayout(width, height, frames, cam, cam_scale, tracks)
