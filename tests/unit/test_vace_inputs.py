"""The planner's conditions become VACE's per-frame video and mask (no model needed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.backends.wan import GENERATE, GRAY, KEEP, vace_inputs
from dreamreel.engine.plan import Condition, NativeGrid, Plan, plan_generation

GRID = NativeGrid(short_side=32, size_multiple=16, frame_multiple=4, fps=16, max_frames=33)
"""The tiny Wan VACE model's grid: 64x32 at 16:9, 4k+1 frames."""
IMG, GEN = ImageKeyframe(url="data:image/png;base64,AA=="), GenerationKeyframe(id="abc")


def _plan(**kwargs: object) -> Plan:
    request = GenerationRequest(prompt="a red ball rolls", **kwargs)
    return plan_generation(request, GRID, seed=1, steps=2, guidance_scale=1.0)


def _pixels(plan: Plan) -> list[np.ndarray]:
    """Random frames per condition, distinct from each other and from gray."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (c.num_frames, plan.native_height, plan.native_width, 3), dtype=np.uint8)
            for c in plan.conditions]


def _arrays(plan: Plan, pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    video, mask = vace_inputs(plan, pixels)
    assert len(video) == len(mask) == plan.native_frames
    assert {im.mode for im in video} == {"RGB"} and {im.mode for im in mask} == {"L"}
    return np.stack([np.asarray(im) for im in video]), np.stack([np.asarray(im) for im in mask])


def _check(plan: Plan, expected: dict[int, tuple[int, int]]) -> None:
    """``expected``: native frame index -> (condition number, frame within that condition's pixels)."""
    pixels = _pixels(plan)
    video, mask = _arrays(plan, pixels)
    assert video.shape == (plan.native_frames, plan.native_height, plan.native_width, 3)
    kept = [i for i in range(plan.native_frames) if (mask[i] == KEEP).all()]
    assert kept == sorted(expected)
    for i in range(plan.native_frames):
        if i in expected:
            condition, frame = expected[i]
            assert np.array_equal(video[i], pixels[condition][frame]), i
        else:
            assert (mask[i] == GENERATE).all(), i
            assert (video[i] == GRAY).all(), i


def test_interpolate_keeps_first_and_last_frame() -> None:
    plan = _plan(keyframes=Keyframes(frame0=IMG, frame1=IMG))
    last = plan.native_frames - 1
    assert last == 32
    _check(plan, {0: (0, 0), last: (1, 0)})


def test_start_image_alone_keeps_only_frame_zero() -> None:
    _check(_plan(keyframes=Keyframes(frame0=IMG)), {0: (0, 0)})


def test_extend_keeps_the_source_tail_at_the_start() -> None:
    plan = _plan(keyframes=Keyframes(frame0=GEN))
    (condition,) = plan.conditions
    assert (condition.kind, condition.frame_index, condition.num_frames) == ("video", 0, 5)
    _check(plan, {i: (0, i) for i in range(5)})


def test_reverse_extend_keeps_the_source_head_at_the_end() -> None:
    plan = _plan(keyframes=Keyframes(frame1=GEN))
    start = plan.native_frames - 5
    _check(plan, {start + i: (0, i) for i in range(5)})


def test_extend_to_an_end_image() -> None:
    plan = _plan(keyframes=Keyframes(frame0=GEN, frame1=IMG))
    _check(plan, {**{i: (0, i) for i in range(5)}, plan.native_frames - 1: (1, 0)})


def test_loop_on_an_image_keeps_it_at_both_ends() -> None:
    plan = _plan(loop=True, keyframes=Keyframes(frame0=IMG))
    _check(plan, {0: (0, 0), plan.native_frames - 1: (1, 0)})


def test_text_only_generates_every_frame() -> None:
    video, mask = _arrays(_plan(), [])
    assert (mask == GENERATE).all() and (video == GRAY).all()


def test_rejects_pixels_that_do_not_match_the_plan() -> None:
    plan = _plan(keyframes=Keyframes(frame0=IMG))
    with pytest.raises(ValueError, match="conditions"):
        vace_inputs(plan, [])
    wrong_size = np.zeros((1, plan.native_height, plan.native_width + 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="expected"):
        vace_inputs(plan, [wrong_size])
    wrong_dtype = np.zeros((1, plan.native_height, plan.native_width, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="expected"):
        vace_inputs(plan, [wrong_dtype])
    past_the_end = replace(plan, conditions=(Condition("frame1", "video", plan.native_frames - 2, 5),))
    with pytest.raises(ValueError, match="does not fit"):
        vace_inputs(past_the_end, [np.zeros((5, plan.native_height, plan.native_width, 3), dtype=np.uint8)])


def test_diffusers_preprocessing_reads_the_frames_as_intended() -> None:
    """Through ``WanVACEPipeline``'s own preprocessing (its ``video_processor`` with the same steps as
    ``preprocess_conditions``/``prepare_video_latents``), kept frames are mask 0 with their pixels, the
    others mask 1 and VACE's zero ("nothing here") after normalising to [-1, 1]."""
    from diffusers.video_processor import VideoProcessor

    plan = _plan(keyframes=Keyframes(frame0=IMG, frame1=IMG))
    pixels = _pixels(plan)
    video, mask = vace_inputs(plan, pixels)
    processor = VideoProcessor(vae_scale_factor=8)
    h, w = plan.native_height, plan.native_width
    video_t = processor.preprocess_video(video, h, w)[0]  # (3, F, H, W) in [-1, 1]
    mask_t = (processor.preprocess_video(mask, h, w)[0] + 1).div(2).clamp(0, 1)
    generate = (mask_t > 0.5).float()[0].numpy()  # the pipeline's threshold

    last = plan.native_frames - 1
    assert (generate[[0, last]] == 0).all() and (generate[1:last] == 1).all()
    assert np.abs(video_t[:, 1:last].numpy()).max() < 0.01  # gray ~ 0: inactive and reactive streams empty
    expected_first = pixels[0][0].astype(np.float32) / 127.5 - 1
    assert np.allclose(video_t[:, 0].permute(1, 2, 0).numpy(), expected_first, atol=1e-5)
