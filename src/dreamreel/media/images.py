"""Turn untrusted keyframe bytes into a clean RGB frame of exactly the generation's size.

Decoding is where a hostile image does damage (a 100000x100000 PNG is a few hundred bytes and ~30 GB of
pixels; eight 128 KB PNGs of 6500x6000 are 3 GB), so every entry point here reads only the header first and
refuses what is too big (:class:`ImageTooLarge`) or of an unexpected format before a pixel is decoded:
:func:`read_header` stops there, :func:`check_decodes` then decodes once in the image's own mode and drops
the pixels (the API's check of an upload), :func:`decode_image` gives the upright RGB picture (the worker).
:func:`fit_to_aspect` then maps the keyframe onto the output frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

#: Formats a keyframe may arrive in; anything else (TIFF, PSD, EPS, ICO ...) widens the attack surface for
#: no product benefit, so Pillow is not even allowed to try those decoders.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

DEFAULT_MAX_PIXELS = 4096 * 4096
"""16.8 MP: a 4k keyframe fits (3840x2160 is 8.3 MP); decoded as RGBA it is 67 MB. The ``max_image_pixels``
setting overrides it, up to :data:`HARD_MAX_PIXELS`."""

HARD_MAX_PIXELS = 8192 * 8192
"""Pillow's own decompression-bomb limit, set explicitly below: it warns above this and refuses twice this
in ``Image.open`` itself, a second line of defence should a caller pass a larger ``max_pixels``."""

#: Transparent pixels are composited onto mid-grey. Our decision: the model sees pixels scaled to [-1, 1], where
#: 128 is ~0, so transparent regions add neither a bright nor a dark bias to the generated clip's exposure
#: (white would read as a "studio backdrop", black as a night scene).
ALPHA_BACKGROUND = (128, 128, 128)

#: Letterbox bars in "pad" mode are black, the video convention a model has seen in its training data.
PAD_COLOUR = (0, 0, 0)

# Set, not trusted to be Pillow's default: something else in the process may have changed or disabled it.
Image.MAX_IMAGE_PIXELS = HARD_MAX_PIXELS


class ImageError(ValueError):
    """The bytes are not an acceptable keyframe image (unknown format, too large, corrupt)."""


class ImageTooLarge(ImageError):
    """The header declares more pixels than allowed; nothing was decoded."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: its format and size (as stored, before any EXIF rotation)."""

    format: str
    width: int
    height: int


def _open_header(data: bytes) -> Image.Image:
    """Open lazily: Pillow parses the header (size, mode, format) but decodes no pixels yet."""
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image refused as a decompression bomb: {exc}") from None
    except Exception as exc:  # hostile headers trip assorted parser errors; all mean "not an image"
        raise ImageError(f"not a {'/'.join(ALLOWED_FORMATS)} image ({type(exc).__name__})") from None


def _checked_open(data: bytes, max_pixels: int) -> tuple[Image.Image, ImageHeader]:
    """The lazily opened image and its header, refused before decoding when unacceptable."""
    if not data:
        raise ImageError("empty image data")
    image = _open_header(data)
    width, height = image.size
    if image.format not in ALLOWED_FORMATS:
        raise ImageError(f"image format {image.format!r} is not accepted; use {', '.join(ALLOWED_FORMATS)}")
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels, over the {max_pixels}-pixel limit"
        )
    return image, ImageHeader(image.format, width, height)


def read_header(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Format and size from the header alone; raises :class:`ImageTooLarge` / :class:`ImageError` without
    decoding any pixels, so it is cheap enough to run on every request before anything is queued."""
    return _checked_open(data, max_pixels)[1]


def _load(image: Image.Image) -> None:
    try:
        image.seek(0)
        image.load()
    except Exception as exc:  # truncated/corrupt streams raise OSError, SyntaxError, struct.error ...
        raise ImageError(f"corrupt {image.format} image: {exc}") from None


def _upright(image: Image.Image) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF must not reject an otherwise valid picture
        return image
    return upright if upright is not None else image


def check_decodes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Decode once in the image's own mode (no RGB copy, no rotation) to prove the pixels are readable, and
    return the upright ``(width, height)``. Peak memory is one decoded frame, at most ``max_pixels`` x 4
    bytes; the caller bounds how many run at once."""
    image, header = _checked_open(data, max_pixels)
    _load(image)
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF: decode_image ignores it too
        orientation = 1
    rotated = orientation in (5, 6, 7, 8)
    return (header.height, header.width) if rotated else (header.width, header.height)


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
    image, _ = _checked_open(data, max_pixels)
    _load(image)
    return _flatten(_upright(image))


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
