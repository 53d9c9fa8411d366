"""Native frames from the model -> the delivered frames of the new part (anchors removed, loops closed).

Both ends of the resampled clip are pinned to native frames (:mod:`dreamreel.media.resample`). Where the
new part meets another clip (an extended source, a reverse-extended one, or itself in a loop), the
native clip is laid out so that the frame *at* the joint is an anchor: resampled like any frame, then
not delivered. The step across the joint is then one output frame's worth of motion, like every other
step, instead of a full native frame's jump (3 output frames at 8 fps native, 24 fps out).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dreamreel.engine.plan import Plan
from dreamreel.media.loop import blend_loop, fade_into_start
from dreamreel.media.resample import iter_output_frames


def new_part(native: np.ndarray, plan: Plan) -> np.ndarray:
    """The native frames the delivered new part is resampled from, anchors included."""
    frames = native[plan.head_trim : native.shape[0] - plan.tail_trim]
    if plan.loop_blend:
        close = fade_into_start if plan.loop_fade_to_start else blend_loop
        frames = close(frames, plan.loop_blend)
        frames = np.concatenate([frames, frames[:1]], axis=0)  # the loop's end anchor is its own start
    return frames


def iter_new_part(native: np.ndarray, plan: Plan) -> Iterator[np.ndarray]:
    """Yield the ``plan.output_frames`` delivered frames of the new part (native size)."""
    frames = new_part(native, plan)
    total = plan.resample_frames
    for index, frame in enumerate(iter_output_frames(frames, total)):
        if (index == 0 and plan.drop_first) or (index == total - 1 and plan.drop_last):
            continue
        yield frame
