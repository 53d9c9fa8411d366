"""Native frames from the model -> the delivered frames of the new part (anchors removed, joints and loops closed).

Both ends of the resampled clip are pinned to native frames (:mod:`dreamreel.media.resample`). Where the
new part meets another clip (an extended source, a reverse-extended one, or itself in a loop), the
native clip is laid out so that the frame *at* the joint is an anchor: resampled like any frame, then
not delivered. The step across the joint is then one output frame's worth of motion, like every other
step, instead of a full native frame's jump (3 output frames at 8 fps native, 24 fps out). At a source clip's
joint that anchor is the model's copy of the source's frame, which is not the source's frame as delivered,
and at an image keyframe the model's first or last frame is its rendering of the image:
:func:`iter_delivered_part` corrects the frames near either onto the real one (``media.seam``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from dreamreel.engine.backends.base import PreviewSink
from dreamreel.engine.plan import Plan
from dreamreel.media.camera import move_camera, move_layer
from dreamreel.media.loop import blend_loop, fade_into_start
from dreamreel.media.resample import iter_output_frames
from dreamreel.media.seam import Joint, iter_joined


def new_part(native: np.ndarray, plan: Plan) -> np.ndarray:
    """The native frames the delivered new part is resampled from, anchors included."""
    frames = native[plan.head_trim : native.shape[0] - plan.tail_trim]
    if plan.camera_move:
        frames = move_camera(frames, plan.camera_move)
    if plan.loop_blend:
        close = fade_into_start if plan.loop_fade_to_start else blend_loop
        frames = close(frames, plan.loop_blend)
        frames = np.concatenate([frames, frames[:1]], axis=0)  # the loop's end anchor is its own start
    return frames


class PartPreview:
    """A :class:`PreviewSink` that hands ``sink`` each preview as :func:`new_part` makes it.

    Why: the backend decodes previews from its latents, the model's own frames. Without this a
    ``progress_video`` would show a still scene where the delivered clip pans (the virtual camera), and
    a loop's tail before it is closed. Joints onto images and source clips are left out: they are made
    at the output size, and a preview is a glance at the motion."""

    def __init__(self, sink: PreviewSink, plan: Plan) -> None:
        self.sink, self.plan = sink, plan

    def due(self, step: int, total: int) -> bool:
        return self.sink.due(step, total)

    def deliver(self, frames: np.ndarray) -> None:
        self.sink.deliver(new_part(frames, self.plan))


def iter_new_part(native: np.ndarray, plan: Plan) -> Iterator[np.ndarray]:
    """Yield the ``plan.output_frames`` delivered frames of the new part (native size)."""
    return _iter_resampled(new_part(native, plan), plan)


def _iter_resampled(frames: np.ndarray, plan: Plan) -> Iterator[np.ndarray]:
    """The delivered frames resampled from :func:`new_part`'s frames, anchors dropped."""
    total = plan.resample_frames
    for index, frame in enumerate(iter_output_frames(frames, total)):
        if (index == 0 and plan.drop_first) or (index == total - 1 and plan.drop_last):
            continue
        yield frame


def iter_delivered_part(
    native: np.ndarray, plan: Plan, *, width: int, height: int,
    head_frame: Callable[[], np.ndarray] | None = None, tail_frame: Callable[[], np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """:func:`iter_new_part`, joined onto what its ends meet, as delivered (``width x height``): ``head_frame``
    gives an extended source's last frame or the start image, ``tail_frame`` a reverse-extended source's
    first frame, the end image, or a loop's start image. An end whose anchor is dropped (``plan.drop_first``,
    ``plan.drop_last``) meets its joint one output frame past the part; an image end is the joint itself."""
    part = new_part(native, plan)
    frames = _iter_resampled(part, plan)
    if not plan.joint_fade or (head_frame is None and tail_frame is None):
        return frames
    return iter_joined(
        frames, total=plan.output_frames, width=width, height=height, fade=plan.joint_fade * plan.source_stride,
        head=Joint(part[0], head_frame, gap=int(plan.drop_first)) if head_frame is not None else None,
        tail=Joint(part[-1], tail_frame, gap=int(plan.drop_last)) if tail_frame is not None else None,
        follow=_camera_follower(plan),
    )


def _camera_follower(plan: Plan) -> Callable[[np.ndarray, int], np.ndarray] | None:
    """How delivered frame ``i`` was moved by the plan's virtual camera, for a joint's correction
    (``media.seam.iter_joined``); ``None`` without one. :func:`new_part` runs the move at constant speed over
    its frames, and the resampled frames span the same clip end to end (anchors included), so delivered
    frame ``i`` sits at ``(i + drop_first) / (resample_frames - 1)`` of the move. The window is the whole
    frame wherever the move meets a joint (``media.camera.shows_whole_frame``, which the planner checks), so
    the joint frame itself is unchanged."""
    if not plan.camera_move:
        return None
    span = max(1, plan.resample_frames - 1)
    return lambda layer, index: move_layer(layer, plan.camera_move, (index + int(plan.drop_first)) / span)
