"""Joining a generated part onto what it must meet without a visible step: a source clip (extend,
reverse-extend) or a keyframe image (image-to-video, end frame, interpolate, loops on an image).

An extension is delivered *with* its source clip (``engine/render.py``). The model is given the source's
last frames as a condition and draws its own copy of them first; that copy is where the new part starts
(the resampling anchor, ``engine/assemble.py``). Two things make the copy differ from the source's real
last frame as delivered: the model's copying error (its VAE round trip and conditioning), and the trip
from the delivered size down to the model's native size and back up. On the embedded model the first
new frame stepped 8.5x the clip's median frame-to-frame difference away from the source's last frame
(``bench/bench_controls.py``); the size round trip alone is about 4x on a 540p clip.

:func:`iter_joined` removes the step the way overlapping windows of long generated videos are usually
joined: the difference between the source's real joint frame and the model's copy, both at the delivered
size, is added to the new part's frames, in full at the joint and fading out along a raised cosine over
``fade`` frames. The new part then starts where the source ends and drifts into the model's own rendering
over about a second. What it cannot hide: content the model put elsewhere (an object it moved) leaves a
faint, fading trace of the difference for those frames. A reverse-extension's end is joined the same way.

Image keyframes are joined the same way. Whoever gives a start image expects the clip
to start *on* it, as Ray 2's do; the embedded model's first frame was 18 dB from the image, and its VAE
alone cannot carry a picture from outside its world closer than about 22 dB, so no amount of training
reaches issue 5's 25 dB. There the joint frame is the new part's own end frame, delivered (``gap`` 0):
the first frame becomes the image, the last frame becomes an end image, and the model's motion takes
over within the fade. A loop on a start image is joined to it at both ends (its end anchor is the loop's
own start, not delivered). What the model itself lands is still measured, before the join, by
``dreamreel-lab eval --first-frame`` (``first_frame_psnr``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from dreamreel.media.encode import scale_rgb


@dataclass(frozen=True)
class Joint:
    """Where the new part meets a source clip or a keyframe image."""

    model_frame: np.ndarray
    """The model's rendering of the joint frame (native size): the new part's resampling anchor at that end."""
    target_frame: Callable[[], np.ndarray]
    """The joint frame as it must be delivered (output size): a source clip's joint frame, or the keyframe
    image fitted to the output. A callable, so the head joint can be read off the source clip's own frames
    as they stream past, just before the new part starts."""
    gap: int = 1
    """Output frames from the joint to the new part's nearest delivered frame: 1 when the anchor is not
    delivered (the joint frame belongs to a source clip, or is the loop's own start), 0 when it is (an image
    keyframe, which the new part's first or last frame becomes)."""


def settle_weight(distance: int, fade: int) -> float:
    """Share of the joint's correction kept ``distance`` output frames from the joint: 1 at it, along a
    raised cosine to 0 at ``fade``."""
    if distance >= fade:
        return 0.0
    return 0.5 + 0.5 * float(np.cos(np.pi * distance / fade))


def iter_joined(
    frames: Iterable[np.ndarray], *, total: int, width: int, height: int, fade: int,
    head: Joint | None = None, tail: Joint | None = None,
    follow: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """The ``total`` delivered frames of a new part (native size), those near a joint scaled to
    ``width x height`` and corrected onto it; the others pass through for the encoder to scale.

    Delivered frame ``i`` is ``i + head.gap`` output frames from the head joint and
    ``total - 1 - i + tail.gap`` from the tail joint. ``follow(correction, i)``, when given, moves a
    joint's correction the way delivered frame ``i`` was moved over the scene (a virtual camera,
    ``media.camera``): the correction is part of the scene, and left still it holds the first second of a
    zoom on the image the zoom starts from."""
    corrections: dict[str, np.ndarray] = {}

    def correction(name: str, joint: Joint) -> np.ndarray:
        if name not in corrections:
            model = scale_rgb(joint.model_frame, width, height).astype(np.float32)
            corrections[name] = joint.target_frame().astype(np.float32) - model
        return corrections[name]

    for index, frame in enumerate(frames):
        weights = [(name, joint, settle_weight(distance + joint.gap, fade))
                   for name, joint, distance in (("head", head, index), ("tail", tail, total - 1 - index))
                   if joint is not None and distance + joint.gap < fade]
        if not weights:
            yield frame
            continue
        out = scale_rgb(frame, width, height).astype(np.float32)
        for name, joint, weight in weights:
            layer = correction(name, joint)
            out += weight * (layer if follow is None else follow(layer, index))
        yield np.clip(np.rint(out), 0, 255).astype(np.uint8)
