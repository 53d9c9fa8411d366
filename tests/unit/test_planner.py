"""Planner arithmetic: exact output sizes for every aspect x resolution, valid native grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dreamreel.core.request import (
    MAX_DURATION_S,
    AspectRatio,
    GenerationKeyframe,
    GenerationRequest,
    ImageKeyframe,
    Keyframes,
    Resolution,
    nearest_format,
)
from dreamreel.engine.assemble import iter_new_part
from dreamreel.engine.plan import NativeGrid, frame_size, native_frame_count, output_size, plan_generation

GEN, IMG = GenerationKeyframe(id="abc"), ImageKeyframe(url="data:image/png;base64,AA==")

EXPECTED_540P = {
    "1:1": (540, 540), "16:9": (960, 540), "9:16": (540, 960), "4:3": (720, 540),
    "3:4": (540, 720), "21:9": (1260, 540), "9:21": (540, 1260),
}


@pytest.mark.parametrize("aspect", list(AspectRatio))
@pytest.mark.parametrize("resolution", list(Resolution))
def test_output_size_short_side_and_ratio(aspect: AspectRatio, resolution: Resolution) -> None:
    width, height = output_size(aspect, resolution)
    assert min(width, height) == resolution.short_side
    assert width % 2 == 0 and height % 2 == 0
    a, b = aspect.ratio
    assert abs(width / height - a / b) < 0.01


def test_known_sizes() -> None:
    for aspect, size in EXPECTED_540P.items():
        assert output_size(AspectRatio(aspect), Resolution.P540) == size
    assert output_size(AspectRatio.LANDSCAPE, Resolution.P4K) == (3840, 2160)
    assert output_size(AspectRatio.LANDSCAPE, Resolution.P720) == (1280, 720)


def test_native_frames_follow_the_vae_grid() -> None:
    ltx = NativeGrid(short_side=512, size_multiple=32, frame_multiple=8, fps=24)
    assert native_frame_count(5, ltx) == 121
    assert native_frame_count(9, ltx) == 217
    capped = NativeGrid(short_side=64, size_multiple=8, frame_multiple=4, fps=24, max_frames=97)
    assert native_frame_count(9, capped) == 97


def test_plan_combines_native_and_output() -> None:
    grid = NativeGrid(short_side=64, size_multiple=8, frame_multiple=4, fps=8)
    request = GenerationRequest(prompt="x", aspect_ratio="21:9", resolution="1080p", duration_s=9)
    plan = plan_generation(request, grid, seed=3, steps=5, guidance_scale=1.0)
    assert (plan.output_width, plan.output_height, plan.output_frames, plan.output_fps) == (2520, 1080, 216, 24)
    assert plan.native_height == 64 and plan.native_width % 8 == 0
    assert plan.native_width == 152  # 64 * 21 / 9 = 149.3 -> nearest multiple of 8
    assert (plan.native_frames - 1) % 4 == 0
    assert plan.output_duration_s == 9.0


LTX = NativeGrid(short_side=512, size_multiple=32, frame_multiple=8, fps=24)
EMBEDDED = NativeGrid(short_side=96, size_multiple=32, frame_multiple=8, fps=8, max_frames=41)


def sized_plan(size: tuple[int, int], grid: NativeGrid = LTX, seconds: int = 5, **fields):
    aspect, resolution = nearest_format(*size)
    request = GenerationRequest(prompt="x", aspect_ratio=aspect, resolution=resolution, size=size,
                                duration_s=seconds, **fields)
    return plan_generation(request, grid, seed=1, steps=2, guidance_scale=1.0)


@pytest.mark.parametrize(("size", "native"), [
    ((1280, 720), (896, 512)),   # a Ray aspect: the same native size as 16:9 720p
    ((720, 1280), (512, 896)),
    ((640, 480), (672, 512)),
    ((1000, 600), (864, 512)),   # 5:3: its own aspect, not its nearest Ray one (16:9 -> 896)
    ((1024, 256), (2048, 512)),  # 4:1 and 1:4, the bounds
    ((256, 1024), (512, 2048)),
    ((1792, 1024), (896, 512)),
])
def test_an_explicit_size_is_delivered_exactly_and_rendered_at_its_own_aspect(size, native) -> None:
    plan = sized_plan(size)
    assert (plan.output_width, plan.output_height) == size
    assert (plan.native_width, plan.native_height) == native
    assert min(native) == LTX.short_side
    assert abs(math.log(native[0] / native[1] / (size[0] / size[1]))) < math.log(1.04)  # grid rounding only


def test_ray_formats_keep_their_sizes() -> None:
    """A request without ``size`` plans exactly as before: the Ray size, the native size of the Ray aspect."""
    for aspect in AspectRatio:
        plan = plan_generation(GenerationRequest(prompt="x", aspect_ratio=aspect, resolution="720p"), EMBEDDED,
                               seed=1, steps=2, guidance_scale=1.0)
        assert (plan.output_width, plan.output_height) == output_size(aspect, Resolution.P720)
        assert (plan.native_width, plan.native_height) == frame_size(aspect, 96, 32)
    assert frame_size(AspectRatio.LANDSCAPE, 96, 32) == (160, 96)


@pytest.mark.parametrize("grid", [LTX, EMBEDDED], ids=["ltx", "embedded"])
@pytest.mark.parametrize("fields", [{}, {"loop": True}, {"keyframes": Keyframes(frame0=GEN)},
                                    {"keyframes": Keyframes(frame0=GEN, frame1=GEN)},
                                    {"keyframes": Keyframes(frame1=IMG)}],
                         ids=["plain", "loop", "extend", "bridge", "end-image"])
def test_every_whole_length_gives_exactly_24_frames_a_second(grid: NativeGrid, fields) -> None:
    for seconds in range(1, MAX_DURATION_S + 1):
        plan = sized_plan((320, 240), grid, seconds, **fields)
        assert plan.output_frames == seconds * 24 and plan.output_fps == 24
        assert plan.native_frames <= grid.max_frames and (plan.native_frames - 1) % grid.frame_multiple == 0
        native = np.zeros((plan.native_frames, 2, 2, 3), dtype=np.uint8)
        assert sum(1 for _ in iter_new_part(native, plan)) == seconds * 24


def test_one_pass_makes_the_length_the_model_can_and_longer_clips_are_resampled_from_it() -> None:
    assert sized_plan((320, 240), EMBEDDED, 1).native_frames == 9        # 1 s at 8 fps
    assert sized_plan((320, 240), EMBEDDED, 5).native_frames == 41       # the most one pass makes
    assert sized_plan((320, 240), EMBEDDED, 20).native_frames == 41      # 20 s: the 5 s pass at quarter speed
    assert sized_plan((240, 320), LTX, 1).native_frames == 25
    assert sized_plan((240, 320), LTX, 20).native_frames == 257           # 10.7 s stretched over 20
    extend = sized_plan((720, 1280), EMBEDDED, 20, keyframes=Keyframes(frame0=GEN))
    assert (extend.native_width, extend.native_height) == (96, 160)
    assert extend.native_frames == 41 and extend.head_trim == 8 and extend.output_frames == 480
