"""Joining a generated part onto a source clip without a visible step (extend and reverse-extend).

An extension is delivered *with* its source clip (``worker/render.py``). The model is given the source's
last frames as a condition and draws its own copy of them first; that copy is where the new part starts
(the resampling anchor, ``engine/assemble.py``). Two things make the copy differ from the source's real
last frame as delivered: the model's copying error (its VAE round trip and conditioning), and the trip
from the delivered size down to the model's native size and back up. On the embedded model the first
new frame stepped 8.5x the clip's median frame-to-frame difference away from the source's last frame
(``bench/bench_controls.py``, session 11); the size round trip alone is about 4x on a 540p clip.

:func:`iter_joined` removes the step the way overlapping windows of long generated videos are usually
joined: the difference between the source's real joint frame and the model's copy, both at the delivered
size, is added to the new part's frames, in full at the joint and fading out along a raised cosine over
``fade`` frames. The new part then starts where the source ends and drifts into the model's own rendering
over about a second. What it cannot hide: content the model put elsewhere (an object it moved) leaves a
faint, fading trace of the difference for those frames. A reverse-extension's end is joined the same way.

Image keyframes are not corrected: the image is not part of the delivered video, so there is no joint to
hide, and how closely the model's first or last frame follows it is the model's own result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from dreamreel.media.encode import scale_rgb


@dataclass(frozen=True)
class Joint:
    """Where the new part meets a source clip."""

    model_frame: np.ndarray
    """The model's copy of the source's joint frame (native size): the new part's anchor at that end."""
    source_frame: Callable[[], np.ndarray]
    """The source's joint frame as delivered (output size). A callable, so the head joint can be read off
    the source clip's own frames as they stream past, just before the new part starts."""


def settle_weight(distance: int, fade: int) -> float:
    """Share of the joint's correction kept ``distance`` output frames from the joint: 1 at it, along a
    raised cosine to 0 at ``fade``."""
    if distance >= fade:
        return 0.0
    return 0.5 + 0.5 * float(np.cos(np.pi * distance / fade))


def iter_joined(
    frames: Iterable[np.ndarray], *, total: int, width: int, height: int, fade: int,
    head: Joint | None = None, tail: Joint | None = None,
) -> Iterator[np.ndarray]:
    """The ``total`` delivered frames of a new part (native size), those near a joint scaled to
    ``width x height`` and corrected onto it; the others pass through for the encoder to scale.

    Delivered frame ``i`` is ``i + 1`` output frames from the head joint (the anchor itself is not
    delivered) and ``total - i`` from the tail joint."""
    corrections: dict[str, np.ndarray] = {}

    def correction(name: str, joint: Joint) -> np.ndarray:
        if name not in corrections:
            model = scale_rgb(joint.model_frame, width, height).astype(np.float32)
            corrections[name] = joint.source_frame().astype(np.float32) - model
        return corrections[name]

    for index, frame in enumerate(frames):
        weights = [(name, joint, settle_weight(distance, fade))
                   for name, joint, distance in (("head", head, index + 1), ("tail", tail, total - index))
                   if joint is not None]
        weights = [(name, joint, w) for name, joint, w in weights if w > 0.0]
        if not weights:
            yield frame
            continue
        out = scale_rgb(frame, width, height).astype(np.float32)
        for name, joint, weight in weights:
            out += weight * correction(name, joint)
        yield np.clip(np.rint(out), 0, 255).astype(np.uint8)
