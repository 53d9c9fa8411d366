"""Turn untrusted keyframe bytes into a clean RGB frame of exactly the generation's size.

Decoding is where a hostile image does damage (a 100000x100000 PNG is a few hundred bytes and ~30 GB of
pixels), so :func:`decode_image` reads only the header first, refuses what is too big or of an unexpected
format, and only then decodes. :func:`fit_to_aspect` then maps the keyframe onto the output frame.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

#: Formats a keyframe may arrive in; anything else (TIFF, PSD, EPS, ICO ...) widens the attack surface for
#: no product benefit, so Pillow is not even allowed to try those decoders.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

DEFAULT_MAX_PIXELS = 40_000_000

#: Transparent pixels are composited onto mid-grey. Our decision: the model sees pixels scaled to [-1, 1], where
#: 128 is ~0, so transparent regions add neither a bright nor a dark bias to the generated clip's exposure
#: (white would read as a "studio backdrop", black as a night scene).
ALPHA_BACKGROUND = (128, 128, 128)

#: Letterbox bars in "pad" mode are black, the video convention a model has seen in its training data.
PAD_COLOUR = (0, 0, 0)

# Pillow's own decompression-bomb check is the second line of defence behind max_pixels; if something in the
# process switched it off (``MAX_IMAGE_PIXELS = None``), switch it back on at Pillow's default.
if Image.MAX_IMAGE_PIXELS is None:
    Image.MAX_IMAGE_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)


class ImageError(ValueError):
    """The bytes are not an acceptable keyframe image (unknown format, too large, corrupt)."""


def _open_header(data: bytes) -> Image.Image:
    """Open lazily: Pillow parses the header (size, mode, format) but decodes no pixels yet."""
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image refused as a decompression bomb: {exc}") from None
    except Exception as exc:  # hostile headers trip assorted parser errors; all mean "not an image"
        raise ImageError(f"not a {'/'.join(ALLOWED_FORMATS)} image ({type(exc).__name__})") from None


def _flatten(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image, refusing oversized or unexpected images before decoding.

    Animated GIF/WEBP yield their first frame. EXIF orientation is applied (phones store portrait shots as
    rotated landscape); unreadable EXIF is ignored rather than fatal, since the pixels are still fine.
    """
    if not data:
        raise ImageError("empty image data")
    image = _open_header(data)
    width, height = image.size
    if image.format not in ALLOWED_FORMATS:
        raise ImageError(f"image format {image.format!r} is not accepted; use {', '.join(ALLOWED_FORMATS)}")
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"image is {width}x{height} = {width * height} pixels, over the {max_pixels}-pixel limit")
    try:
        image.seek(0)
        image.load()
    except Exception as exc:  # truncated/corrupt streams raise OSError, SyntaxError, struct.error ...
        raise ImageError(f"corrupt {image.format} image: {exc}") from None
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF must not reject an otherwise valid picture
        upright = image
    return _flatten(upright if upright is not None else image)


def fit_to_aspect(image: Image.Image, width: int, height: int, mode: Literal["crop", "pad"] = "crop") -> np.ndarray:
    """Map ``image`` onto a ``width`` x ``height`` frame; returns a ``(height, width, 3)`` uint8 array.

    ``crop`` (default, our decision, matching what Luma does with a mismatched keyframe): centre-crop to the
    target aspect, then resize, so the video fills the frame and nothing is distorted. ``pad``: scale to fit
    inside and letterbox with :data:`PAD_COLOUR`, keeping the whole picture. Lanczos resampling throughout.
    """
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    source = image if image.mode == "RGB" else image.convert("RGB")
    src_w, src_h = source.size
    if mode == "crop":
        target_ratio = width / height
        if src_w / src_h > target_ratio:
            crop_w = src_h * target_ratio
            left = (src_w - crop_w) / 2
            box = (left, 0.0, left + crop_w, float(src_h))
        else:
            crop_h = src_w / target_ratio
            top = (src_h - crop_h) / 2
            box = (0.0, top, float(src_w), top + crop_h)
        framed = source.resize((width, height), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    elif mode == "pad":
        scale = min(width / src_w, height / src_h)
        inner = (min(width, max(1, round(src_w * scale))), min(height, max(1, round(src_h * scale))))
        resized = source.resize(inner, Image.Resampling.LANCZOS, reducing_gap=3.0)
        framed = Image.new("RGB", (width, height), PAD_COLOUR)
        framed.paste(resized, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    else:
        raise ValueError(f"mode must be 'crop' or 'pad', got {mode!r}")
    return np.array(framed, dtype=np.uint8)
