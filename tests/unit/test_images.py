"""Keyframe decoding: refuse bombs and odd formats before decoding, then orient, flatten and frame."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dreamreel.media.images import ALPHA_BACKGROUND, PAD_COLOUR, ImageError, decode_image, fit_to_aspect


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature plus an IHDR claiming ``width`` x ``height`` RGB pixels, and no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + iend


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    decoded = decode_image(_encode(image, "JPEG", exif=exif, quality=95))
    assert decoded.size == (20, 40)
    assert decoded.mode == "RGB"
    top, bottom = decoded.getpixel((10, 5)), decoded.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_alpha_is_flattened_onto_neutral_grey() -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    decoded = decode_image(_encode(image, "PNG"))
    assert decoded.mode == "RGB"
    assert decoded.getpixel((3, 3)) == ALPHA_BACKGROUND
    assert decoded.getpixel((0, 0)) == (255, 0, 0)


def test_palette_transparency_is_flattened() -> None:
    image = Image.new("P", (2, 2), 0)
    image.putpalette([10, 20, 30] * 256)
    decoded = decode_image(_encode(image, "GIF", transparency=0))
    assert decoded.getpixel((1, 1)) == ALPHA_BACKGROUND


def test_huge_header_refused_before_any_decoding() -> None:
    # No IDAT at all: had decoding been attempted, the error would be about missing data, not the size.
    with pytest.raises(ImageError, match="bomb|pixel"):
        decode_image(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageError, match="8000x8000 = 64000000 pixels"):
        decode_image(_png_header_only(8000, 8000))


def test_max_pixels_is_configurable() -> None:
    data = _encode(Image.new("RGB", (100, 100)), "PNG")
    assert decode_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="over the 9999-pixel limit"):
        decode_image(data, max_pixels=9_999)


@pytest.mark.parametrize("data", [b"", b"definitely not an image", b"\x89PNG\r\n\x1a\n garbage"])
def test_non_image_bytes_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        decode_image(data)


def test_disallowed_format_is_refused() -> None:
    with pytest.raises(ImageError, match="not a PNG/JPEG/WEBP/GIF/BMP image"):
        decode_image(_encode(Image.new("RGB", (8, 8)), "TIFF"))


def test_truncated_image_is_an_image_error() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), "PNG")
    with pytest.raises(ImageError, match="corrupt"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    decoded = decode_image(_encode(Image.new("RGB", (16, 8), (200, 10, 10)), fmt))
    assert decoded.size == (16, 8)
    assert decoded.mode == "RGB"


def _three_bands(width: int, height: int) -> Image.Image:
    """Red | green | blue vertical bands: a centre crop to a square keeps only green."""
    image = Image.new("RGB", (width, height), (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, width // 3, height))
    image.paste((0, 0, 255), (2 * width // 3, 0, width, height))
    return image


def test_crop_fills_frame_with_the_centre() -> None:
    frame = fit_to_aspect(_three_bands(300, 100), 64, 64)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    centre = frame[8:-8, 8:-8].reshape(-1, 3)
    assert centre[:, 1].min() > 200 and centre[:, 0].max() < 40 and centre[:, 2].max() < 40


@pytest.mark.parametrize(("width", "height"), [(64, 64), (160, 90), (90, 160), (7, 3)])
@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_output_is_exact_size(width: int, height: int, mode: str) -> None:
    frame = fit_to_aspect(_three_bands(123, 77), width, height, mode)  # type: ignore[arg-type]
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8


def test_pad_letterboxes_and_keeps_everything() -> None:
    frame = fit_to_aspect(Image.new("RGB", (300, 100), (255, 255, 255)), 60, 60, "pad")
    assert frame.shape == (60, 60, 3)
    assert (frame[:18] == PAD_COLOUR).all() and (frame[-18:] == PAD_COLOUR).all()  # bars above and below
    assert (frame[22:38] > 240).all()  # the whole 60x20 picture in the middle
