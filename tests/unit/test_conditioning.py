"""Planner layout of conditions, loop blending, anchors and the per-family capability table."""

from __future__ import annotations

import numpy as np
import pytest

from dreamreel.core.capabilities import check_supported
from dreamreel.core.conditioning import Control, check_image_source, controls_of
from dreamreel.core.errors import InvalidRequest, NotSupported
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.assemble import iter_new_part
from dreamreel.engine.backends.common import CheckpointDefaults
from dreamreel.engine.plan import NativeGrid, plan_generation
from dreamreel.media.loop import blend_loop, fade_into_start
from dreamreel.media.seam import Joint, iter_joined, settle_weight

GRID = NativeGrid(short_side=64, size_multiple=32, frame_multiple=8, fps=8)
IMG, GEN = ImageKeyframe(url="data:image/png;base64,AA=="), GenerationKeyframe(id="abc")


def plan(**kwargs):
    return plan_generation(GenerationRequest(prompt="x", **kwargs), GRID, seed=1, steps=2, guidance_scale=1.0)


def test_condition_layout() -> None:
    both = plan(keyframes=Keyframes(frame0=IMG, frame1=IMG))
    assert [(c.slot, c.kind, c.frame_index) for c in both.conditions] == [("frame0", "image", 0),
                                                                          ("frame1", "image", 40)]
    bridge = plan(keyframes=Keyframes(frame0=GEN, frame1=GEN))
    assert bridge.native_frames == 41 + 16 and (bridge.head_trim, bridge.tail_trim) == (8, 8)
    assert [(c.kind, c.frame_index, c.num_frames) for c in bridge.conditions] == [("video", 0, 9), ("video", 48, 9)]
    assert bridge.drop_first and bridge.drop_last and bridge.source_stride == 3
    looped = plan(loop=True, keyframes=Keyframes(frame0=IMG))
    assert [c.frame_index for c in looped.conditions] == [0, 40] and looped.drop_last and not looped.loop_blend


def test_new_part_has_exact_frames_and_drops_anchors() -> None:
    p = plan(keyframes=Keyframes(frame0=GEN))
    native = np.arange(p.native_frames, dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)
    out = list(iter_new_part(native, p))
    assert len(out) == p.output_frames and out[-1][0, 0, 0] == p.native_frames - 1
    assert out[0][0, 0, 0] >= 8  # the model's copy of the source tail (native 0..7) is not delivered


def test_a_joint_is_corrected_onto_the_source_frame_and_fades_out() -> None:
    """Near a joint the delivered frames are scaled to the output size and moved onto the source's frame;
    the correction fades along a raised cosine, and frames past the fade pass through at native size."""
    assert settle_weight(0, 6) == 1.0 and settle_weight(6, 6) == 0.0 and 0.9 < settle_weight(1, 6) < 1.0
    native = [np.full((2, 2, 3), 60, dtype=np.uint8) for _ in range(12)]
    model_copy = np.full((2, 2, 3), 60, dtype=np.uint8)  # the model drew the source's frame as 60 ...
    joined = list(iter_joined(iter(native), total=12, width=4, height=4, fade=6,
                              head=Joint(model_copy, lambda: np.full((4, 4, 3), 90, dtype=np.uint8)),  # ... it is 90
                              tail=Joint(model_copy, lambda: np.full((4, 4, 3), 30, dtype=np.uint8))))
    values = [int(frame[0, 0, 0]) for frame in joined]
    assert joined[0].shape == (4, 4, 3) and 87 <= values[0] < 90  # one output frame past the joint
    assert values[:5] == sorted(values[:5], reverse=True) and values[4] > 60  # fading, never overshooting
    assert joined[6].shape == (2, 2, 3) and values[5:7] == [60, 60]  # untouched between the fades
    assert 30 < values[-1] <= 33 and values[-5:] == sorted(values[-5:], reverse=True)


def test_source_clips_and_images_make_joints() -> None:
    assert plan(keyframes=Keyframes(frame0=GEN)).joint_fade == 16 == plan(keyframes=Keyframes(frame1=GEN)).joint_fade
    assert plan(keyframes=Keyframes(frame0=IMG, frame1=IMG)).joint_fade == 16  # the ends become the images
    assert plan().joint_fade == 0 == plan(loop=True).joint_fade  # nothing to meet


def test_an_image_joint_makes_the_end_frame_the_image() -> None:
    """With ``gap`` 0 the joint frame is delivered: the first (or last) frame *is* the target, and the frames
    after it keep a fading share of the correction."""
    native = [np.full((2, 2, 3), 60, dtype=np.uint8) for _ in range(12)]
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:2] = 200  # a picture with structure, not a flat colour
    joined = list(iter_joined(iter(native), total=12, width=4, height=4, fade=6,
                              head=Joint(native[0], lambda: image, gap=0),
                              tail=Joint(native[-1], lambda: 255 - image, gap=0)))
    assert np.array_equal(joined[0], image) and np.array_equal(joined[-1], 255 - image)
    top = [int(frame[0, 0, 0]) for frame in joined]
    assert top[:6] == sorted(top[:6], reverse=True) and 60 < top[4] < 200 and top[6] == 60


def test_blend_loop_wraps_smoothly() -> None:
    ramp = np.linspace(0, 240, 49).astype(np.uint8)[:, None, None, None].repeat(3, axis=3)
    blended = blend_loop(ramp, 8).astype(float)
    assert len(blended) == 41
    steps = np.abs(np.diff(np.concatenate([blended, blended[:1]]), axis=0))[:, 0, 0, 0]
    assert steps.max() < 40  # a plain ramp would jump 240 at the wrap
    # the restart itself (last frame -> first) and the fade's end are within a natural step (5) of the
    # ramp's own, since the fade starts and ends slowly
    assert steps[-1] < 7.5 and steps[7] < 7.5, steps


def test_fade_into_start_keeps_the_start_and_wraps_onto_it() -> None:
    ramp = np.linspace(0, 200, 41).astype(np.uint8)[:, None, None, None].repeat(3, axis=3)
    faded = fade_into_start(ramp, 12)
    assert faded.shape == ramp.shape and np.array_equal(faded[:29], ramp[:29])  # untouched up to the fade
    steps = np.abs(np.diff(np.concatenate([faded, faded[:1]]).astype(float), axis=0))[:, 0, 0, 0]
    assert steps[-1] <= 5 and steps.max() < 40  # the wrap onto the start is a small step; the ramp jumps 200
    with pytest.raises(ValueError):
        fade_into_start(ramp, 21)


def test_a_loop_on_an_image_fades_where_the_last_frame_is_not_pinned() -> None:
    request = GenerationRequest(prompt="x", loop=True, keyframes=Keyframes(frame0=IMG))
    faded = plan_generation(request, GRID, seed=1, steps=2, guidance_scale=1.0, pin_last_frame=False)
    assert [c.frame_index for c in faded.conditions] == [0] and faded.native_frames == 41
    assert faded.loop_fade_to_start and faded.loop_blend == 8 and faded.drop_last
    native = np.arange(41, dtype=np.uint8)[:, None, None, None].repeat(3, axis=3) * 5
    out = list(iter_new_part(native, faded))
    assert len(out) == faded.output_frames and out[0][0, 0, 0] == 0  # starts on the start image's frame
    unlooped = plan(loop=True)
    assert not unlooped.loop_fade_to_start and unlooped.native_frames == 41 + 8  # cross-fade: extra frames
    assert CheckpointDefaults(1, 1, 1, 1, 1.0, 1).updated({"loop_on_image": "fade"}).loop_on_image == "fade"
    with pytest.raises(ValueError, match="loop_on_image"):
        CheckpointDefaults(1, 1, 1, 1, 1.0, 1).updated({"loop_on_image": "sometimes"})


def test_capability_table_names_model_and_control() -> None:
    request = GenerationRequest(prompt="x", keyframes=Keyframes(frame1=IMG))
    assert controls_of(request) == [Control.END_IMAGE]
    check_supported(request)
    with pytest.raises(NotSupported) as caught:
        check_supported(request, {"ray-2": "wan-i2v"})
    assert "ray-2" in caught.value.message and "end_image" in caught.value.message
    assert caught.value.field == "keyframes.frame1"


@pytest.mark.parametrize("url", ["ftp://x/y.png", "file:///etc/passwd", "data:text/html,x", "data:image/png",
                                 "http://169.254.169.254/", "javascript:alert(1)"])
def test_image_source_shapes_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_image_source(url, "keyframes.frame0", allow_private=True)
