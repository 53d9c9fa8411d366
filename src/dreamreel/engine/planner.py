"""Request -> Plan: the native size the model generates and the exact output the user asked for.

Pure arithmetic, no torch, so it is unit-tested exhaustively and usable from the API process.
"""

from __future__ import annotations

from dreamreel.core.request import AspectRatio, GenerationRequest, Resolution
from dreamreel.engine.plan import NativeGrid, Plan

OUTPUT_FPS = 24
"""Delivered clips are 24 fps (5 s = 120 frames, 9 s = 216), as Ray 2 delivers them."""


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def frame_size(aspect: AspectRatio, short_side: int, multiple: int = 2) -> tuple[int, int]:
    """(width, height) with the given short side and aspect, both multiples of ``multiple``."""
    a, b = aspect.ratio
    if a >= b:
        return _round_to(short_side * a / b, multiple), _round_to(short_side, multiple)
    return _round_to(short_side, multiple), _round_to(short_side * b / a, multiple)


def output_size(aspect: AspectRatio, resolution: Resolution) -> tuple[int, int]:
    """Exact delivered size: e.g. 16:9 540p -> 960x540, 9:16 4k -> 2160x3840 (even, for yuv420p)."""
    return frame_size(aspect, resolution.short_side, 2)


def native_frame_count(duration_s: int, grid: NativeGrid) -> int:
    """Frames the model generates: ``frame_multiple * k + 1`` closest to duration x fps, capped."""
    k = max(1, round(duration_s * grid.fps / grid.frame_multiple))
    k = min(k, (grid.max_frames - 1) // grid.frame_multiple)
    return grid.frame_multiple * k + 1


def plan_generation(
    request: GenerationRequest, grid: NativeGrid, *, seed: int, steps: int, guidance_scale: float
) -> Plan:
    native_width, native_height = frame_size(request.aspect_ratio, grid.short_side, grid.size_multiple)
    width, height = output_size(request.aspect_ratio, request.resolution)
    return Plan(
        prompt=request.prompt,
        seed=seed,
        native_width=native_width,
        native_height=native_height,
        native_frames=native_frame_count(request.duration_s, grid),
        native_fps=grid.fps,
        output_width=width,
        output_height=height,
        output_frames=request.duration_s * OUTPUT_FPS,
        output_fps=OUTPUT_FPS,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
    )
