"""Project a background texture through the camera: one resample of one texture per frame.

Why this shape: the scenery is painted once per clip (:mod:`.textures`) over everything the
camera will see, and each frame is then a cheap resample of it, chosen per camera kind for
speed on a small CPU (training renders on the fly):

* static, pan, tilt and zoom are axis-aligned, so a frame is a sub-pixel crop-and-scale,
  which Pillow's separable ``resize(box=...)`` does fast and with proper filtering;
* orbit shears rows by different amounts; a general bilinear affine warp is ~3x slower, so
  the texture is upsampled 4x horizontally once and each frame takes a nearest-neighbour
  shear of it (rows are pixel-aligned because an orbit never zooms or tilts), i.e. quarter
  pixel precision at nearest-neighbour cost;
* identical frames (a static camera) are resampled once and copied.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from dreamreel_lab.world.layout import ClipLayout
from dreamreel_lab.world.textures import phase_at, render_background
from dreamreel_lab.world.vocab import Background, Camera

_PAD = 3
_ORBIT_UPSAMPLE = 4
_MAX_DENSITY = 400.0


def draw_scenery(
    out: np.ndarray, background: Background, seed: int, layout: ClipLayout, camera: Camera, fps: float
) -> None:
    """Fill ``out`` (frames, height, width, 3) with the scenery as the camera sees it."""
    frames, height, width = out.shape[:3]
    short = layout.short_side
    cam = layout.camera
    # Texels per world unit: sharp at the closest zoom for small clips; big clips are already
    # detailed enough that a 1.5x magnified end frame looks fine, and texels cost time.
    density = min(short * float(cam.zoom.max()), max(short, _MAX_DENSITY))
    qx = (np.array([0.0, width, 0.0, width]) - width / 2) / short
    qy = (np.array([0.0, 0.0, height, height]) - height / 2) / short
    # World corners of the screen in every frame: world = centre + q / zoom (+ shear * q_y).
    wx = cam.x[:, None] + qx[None, :] / cam.zoom[:, None] + cam.shear[:, None] * qy[None, :]
    wy = cam.y[:, None] + qy[None, :] / cam.zoom[:, None]
    x0 = math.floor(float(wx.min()) * density) / density - _PAD / density
    y0 = math.floor(float(wy.min()) * density) / density - _PAD / density
    tex_w = math.ceil((float(wx.max()) - x0) * density) + _PAD
    tex_h = math.ceil((float(wy.max()) - y0) * density) + _PAD
    orbit = camera in (Camera.ORBIT_LEFT, Camera.ORBIT_RIGHT)
    if orbit:  # pixel-aligned rows: texel row centres land exactly on pixel row centres
        y0 = -(height / 2 + _PAD) / short
        tex_h = height + 2 * _PAD
    box = (x0, y0, x0 + tex_w / density, y0 + tex_h / density)
    looks = [Image.fromarray(t) for t in render_background(background, seed, box, (tex_w, tex_h), height / short / 2)]
    if orbit:
        looks = [look.resize((tex_w * _ORBIT_UPSAMPLE, tex_h), Image.Resampling.BILINEAR) for look in looks]
    done: dict[tuple[int, float, float, float, float], int] = {}
    for i in range(frames):
        # Output pixel (X, Y) -> texture coordinate (a X + b Y + c, e Y + f), centres to centres.
        a = density / (short * float(cam.zoom[i]))
        b = density * float(cam.shear[i]) / short
        c = density * (float(cam.x[i]) - x0) - a * width / 2 - b * height / 2
        f = density * (float(cam.y[i]) - y0) - a * height / 2
        phase = phase_at(background, i, fps)
        key = (phase, a, b, c, f)
        if key in done:
            out[i] = out[done[key]]
            continue
        done[key] = i
        look = looks[phase]
        if orbit:
            k = _ORBIT_UPSAMPLE
            frame = look.transform(
                (width, height), Image.Transform.AFFINE, (k * a, k * b, k * c, 0.0, a, f), Image.Resampling.NEAREST
            )
        else:
            frame = look.resize((width, height), Image.Resampling.BILINEAR, box=(c, f, c + a * width, f + a * height))
        out[i] = np.asarray(frame)
