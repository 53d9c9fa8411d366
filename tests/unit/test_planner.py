"""Planner arithmetic: exact output sizes for every aspect x resolution, valid native grids."""

from __future__ import annotations

import pytest

from dreamreel.core.request import AspectRatio, GenerationRequest, Resolution
from dreamreel.engine.plan import NativeGrid, native_frame_count, output_size, plan_generation

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
