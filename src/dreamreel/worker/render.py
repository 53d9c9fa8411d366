"""One request -> one MP4 and poster on disk: plan, generate native frames, encode to the exact output.

With keyframes, ``inputs`` resolves the conditioning pixels; an extension is delivered *with* its source
clip(s), as Luma delivers them: ``[frame0 generation] + new part + [frame1 generation]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamreel.core.capabilities import pins_last_frame
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe
from dreamreel.engine.assemble import PartPreview, iter_delivered_part
from dreamreel.engine.backends.base import Backend, CancelCheck, PreviewSink, StepCallback
from dreamreel.engine.plan import Plan, plan_generation
from dreamreel.media.clip import iter_clip_frames
from dreamreel.media.encode import EncodedVideo, encode_frames, write_poster
from dreamreel.media.probe import probe_mp4
from dreamreel.worker.inputs import InputError, InputResolver


def remember_last(stream: Iterator[np.ndarray], kept: list[np.ndarray]) -> Iterator[np.ndarray]:
    """``stream`` unchanged, its latest frame kept in ``kept`` (the one frame a joint needs, no second decode)."""
    for frame in stream:
        kept[:] = [frame]
        yield frame


def _image_joints(
    request: GenerationRequest, inputs: InputResolver | None, width: int, height: int,
) -> tuple[Callable[[], np.ndarray] | None, Callable[[], np.ndarray] | None]:
    """The keyframe images the new part's first and last frames must become, fitted to the output size
    (``media.seam``): the start image at the head; the end image at the tail, or the start image again
    when the clip loops on it."""
    keyframes = request.keyframes
    if keyframes is None or inputs is None:
        return None, None

    def image(slot: str) -> Callable[[], np.ndarray]:
        return lambda: inputs.image(request, slot, width, height)

    start = isinstance(keyframes.frame0, ImageKeyframe)
    head = image("frame0") if start else None
    tail = image("frame1") if isinstance(keyframes.frame1, ImageKeyframe) else None
    if request.loop and start:
        tail = head
    return head, tail


@dataclass(frozen=True)
class RenderedClip:
    plan: Plan
    video: EncodedVideo
    poster: Path | None


def render_clip(
    backend: Backend,
    request: GenerationRequest,
    *,
    seed: int,
    video_path: Path,
    poster_path: Path | None,
    on_step: StepCallback,
    should_cancel: CancelCheck,
    steps: int | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    inputs: InputResolver | None = None,
    preview: PreviewSink | None = None,
) -> RenderedClip:
    plan = plan_generation(
        request,  # the plan's prompt carries the camera concepts as caption clauses (core/concepts.py)
        backend.native_grid(),
        seed=seed,
        steps=steps or backend.default_steps,
        guidance_scale=backend.default_guidance,
        pin_last_frame=pins_last_frame(backend.name) and backend.loop_on_image == "keyframe",
        virtual_camera=backend.camera_moves == "virtual",
    )
    if on_plan is not None:  # e.g. log the exact prompt the model receives
        on_plan(plan)
    if plan.conditions and inputs is None:
        raise InputError("keyframes need an input resolver (not available here)")
    pixels = inputs.condition_pixels(request, plan) if inputs is not None and plan.conditions else []
    if preview is not None:
        preview = PartPreview(preview, plan)
    frames = backend.generate(plan, on_step, should_cancel, pixels, preview=preview)

    width, height = plan.output_width, plan.output_height
    parts: list[Iterator[np.ndarray]] = []
    total = plan.output_frames
    keyframes = request.keyframes
    head = tail = None
    if keyframes is not None and isinstance(keyframes.frame0, GenerationKeyframe):
        head = inputs.source_path(request, "frame0")  # type: ignore[union-attr]
    if keyframes is not None and isinstance(keyframes.frame1, GenerationKeyframe):
        tail = inputs.source_path(request, "frame1")  # type: ignore[union-attr]
    head_last: list[np.ndarray] = []  # the extended source's last frame, kept as it streams past
    if head is not None:
        total += probe_mp4(head).frames
        parts.append(remember_last(iter_clip_frames(head, width, height), head_last))
    tail_frames: Iterator[np.ndarray] = iter(())
    tail_first = None  # a reverse-extended source's first frame, read before the new part needs it
    if tail is not None:
        total += probe_mp4(tail).frames
        tail_frames = iter_clip_frames(tail, width, height)
        tail_first = next(tail_frames, None)
    head_frame, tail_frame = _image_joints(request, inputs, width, height)
    if head is not None:
        head_frame = lambda: head_last[-1]  # noqa: E731 (read when the new part starts)
    if tail_first is not None:
        tail_frame = lambda: tail_first  # noqa: E731
    parts.append(iter_delivered_part(frames, plan, width=width, height=height,
                                     head_frame=head_frame, tail_frame=tail_frame))
    if tail_first is not None:
        parts.append(itertools.chain([tail_first], tail_frames))

    video_path.parent.mkdir(parents=True, exist_ok=True)
    first: list[np.ndarray] = []

    def remember_first(stream: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in stream:
            if not first:
                first.append(frame)
            yield frame

    video = encode_frames(remember_first(itertools.chain(*parts)), video_path, width=width, height=height,
                          fps=plan.output_fps, total=total, loop=request.loop)
    poster = None
    if poster_path is not None:
        poster = write_poster(first[0], poster_path, width=width, height=height)
    return RenderedClip(plan=plan, video=video, poster=poster)
