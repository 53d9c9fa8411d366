"""The pixel bound holds on every path that decodes a keyframe: the header check the API runs before it
decodes an upload, and the worker's keyframe sources (URLs, ``data:`` URIs, uploads)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from tests.unit.test_images import _png_header_only

from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.inputs import ImageSources, InputError
from dreamreel.media.images import (
    DEFAULT_MAX_PIXELS,
    HARD_MAX_PIXELS,
    ImageError,
    ImageTooLarge,
    check_decodes,
    read_header,
)


def test_defaults_hold_a_4k_frame_and_pillows_guard_is_set() -> None:
    assert DEFAULT_MAX_PIXELS == 4096 * 4096 >= 3840 * 2160
    assert Image.MAX_IMAGE_PIXELS == HARD_MAX_PIXELS


def test_header_check_refuses_a_huge_image_without_decoding() -> None:
    # Header only, no pixel data: a decode would fail on the missing data, not on the size.
    with pytest.raises(ImageTooLarge, match="6500x6000 = 39000000 pixels, over the 16777216-pixel limit"):
        read_header(_png_header_only(6500, 6000))
    assert read_header(_png_header_only(4096, 4096)).width == 4096  # at the limit: fine (header only)
    with pytest.raises(ImageTooLarge, match="bomb"):  # beyond Pillow's own guard, refused by Image.open
        read_header(_png_header_only(20_000, 20_000), max_pixels=HARD_MAX_PIXELS)


def test_check_decodes_reads_the_pixels_and_reports_the_upright_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 270: width and height swap
    buffer = io.BytesIO()
    Image.new("RGB", (30, 10), (1, 2, 3)).save(buffer, "JPEG", exif=exif)
    assert check_decodes(buffer.getvalue()) == (10, 30)
    with pytest.raises(ImageError, match="corrupt"):
        check_decodes(_png_header_only(16, 16))


def test_the_workers_keyframe_sources_apply_the_bound() -> None:
    uri = "data:image/png;base64," + base64.b64encode(_png_header_only(5000, 4000)).decode()
    request = GenerationRequest(prompt="x", keyframes=Keyframes(frame0=ImageKeyframe(url=uri)))
    with pytest.raises(InputError, match=r"keyframes.frame0: .*over the 16777216-pixel limit"):
        ImageSources().image(request, "frame0", 64, 64)
    with pytest.raises(InputError, match="over the 1000-pixel limit"):
        ImageSources(max_pixels=1000).image(request, "frame0", 64, 64)
