"""One validated request -> the stream of delivered frames: plan, conditions, generate, join, deliver.

This is the whole of what a generation *is*, whoever runs it: the worker (which claims the job, hands in
its keyframe sources, and stores what :func:`dreamreel.media.encode.encode_clip` writes) and
``dreamreel generate`` (which does the same with local images only) call the same :func:`render`.

With keyframes, ``sources`` (:mod:`.inputs`) resolves the conditioning pixels; an extension is delivered
*with* its source clip(s), as Luma delivers them: ``[frame0 generation] + new part + [frame1 generation]``.
The new part itself (anchors dropped, virtual camera, loop closed, joints corrected onto what its ends
meet) is :mod:`.assemble`'s; this module decides what those ends meet and strings the parts together.

Everything after the model runs is lazy: the frames are decoded, resampled and joined one at a time as the
encoder pulls them, because a 4k output does not fit in memory as one array (``media/encode.py``). The cancel
check is asked again before every delivered frame (and once after the last), so a cancel, a delete or a time
limit stops frame assembly and encoding too, not only denoising.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from dreamreel.core.capabilities import pins_last_frame
from dreamreel.core.edits import output_of
from dreamreel.core.errors import InvalidRequest
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe
from dreamreel.engine.assemble import PartPreview, iter_delivered_part
from dreamreel.engine.backends.base import Backend, CancelCheck, GenerationCancelled, PreviewSink, StepCallback
from dreamreel.engine.edit import condition_pixels, edit_guide, iter_delivered_edit, plan_edit
from dreamreel.engine.inputs import InputError, KeyframeSources
from dreamreel.engine.plan import Plan, plan_generation
from dreamreel.media.clip import iter_clip_frames
from dreamreel.media.probe import probe_mp4
from dreamreel.media.video_source import VideoSourceError, read_facts


@dataclass(frozen=True)
class RenderedClip:
    """A generated clip, ready to encode: ``frames`` yields its ``total`` delivered frames in order, each
    ``width x height`` (a ``media.encode.FrameStream``: ``media.encode.encode_clip`` writes it). ``frames``
    can be read once; source clips and joint frames are read as it is."""

    plan: Plan
    width: int
    height: int
    fps: int
    total: int
    loop: bool
    frames: Iterator[np.ndarray]


def render(
    backend: Backend,
    request: GenerationRequest,
    *,
    seed: int,
    sources: KeyframeSources | None,
    on_step: StepCallback,
    should_cancel: CancelCheck,
    steps: int | None = None,
    guidance_scale: float | None = None,
    preview: PreviewSink | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> RenderedClip:
    """Plan ``request`` for ``backend`` (``steps`` and ``guidance_scale``: the model's config, else the
    checkpoint's defaults), run the model, and lay out the delivered clip around its output.

    The model runs here (``on_step``, ``should_cancel`` and ``preview`` as in :meth:`Backend.generate`;
    ``preview`` sees the new part as :class:`PartPreview` makes it); the source clips of an extension are
    opened here too, so a missing one fails before anything is encoded. ``sources`` may be ``None`` only
    for a request without keyframes. Raises :class:`InputError` for a keyframe that cannot be resolved, and
    :class:`GenerationCancelled` once ``should_cancel()`` is true: while denoising or decoding, or later while
    the returned clip's frames are read. A video edit (``request.edit``) goes through :func:`render_edit`."""
    if request.edit is not None:
        if sources is None:
            raise ValueError("a video edit needs sources")
        return render_edit(backend, request, seed=seed, sources=sources, on_step=on_step, should_cancel=should_cancel,
                           steps=steps, guidance_scale=guidance_scale, preview=preview, on_plan=on_plan)
    plan = plan_generation(
        request,  # the plan's prompt carries the camera concepts as caption clauses (core/concepts.py)
        backend.native_grid(),
        seed=seed,
        steps=steps or backend.default_steps,
        guidance_scale=backend.default_guidance if guidance_scale is None else guidance_scale,
        pin_last_frame=pins_last_frame(backend.name) and backend.loop_on_image == "keyframe",
        virtual_camera=backend.camera_moves == "virtual",
    )
    if on_plan is not None:  # e.g. log the exact prompt the model receives
        on_plan(plan)
    if plan.conditions and sources is None:
        raise ValueError("a request with keyframes needs keyframe sources")
    pixels = sources.condition_pixels(request, plan) if sources is not None and plan.conditions else []
    if preview is not None:
        preview = PartPreview(preview, plan)
    native = backend.generate(plan, on_step, should_cancel, pixels, preview=preview)
    clip = _deliver(native, plan, request, sources)
    return dataclasses.replace(clip, frames=_until_cancelled(clip.frames, should_cancel))


def render_edit(
    backend: Backend,
    request: GenerationRequest,
    *,
    seed: int,
    sources: KeyframeSources,
    on_step: StepCallback,
    should_cancel: CancelCheck,
    steps: int | None = None,
    guidance_scale: float | None = None,
    preview: PreviewSink | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> RenderedClip:
    """A modify or reframe of ``request.edit``'s source (``engine/edit.py``): the source is found or fetched,
    checked from its header (``InputError`` for one that is not a usable video, too long or too large), its
    output decided (``core.edits.output_of``: a URL source's is known only now), then held to while the
    model denoises, and delivered as :func:`render` delivers a clip."""
    path = sources.edit_source(request)
    try:
        facts = read_facts(path)
        request = output_of(request, facts)
    except (VideoSourceError, InvalidRequest) as exc:
        raise InputError(f"media.url: {getattr(exc, 'message', exc)}") from None
    layout = plan_edit(request, facts, path, backend.native_grid(), family=backend.name, seed=seed,
                       steps=steps or backend.default_steps,
                       guidance_scale=backend.default_guidance if guidance_scale is None else guidance_scale)
    plan = layout.plan
    if on_plan is not None:
        on_plan(plan)
    try:
        guide = edit_guide(layout, backend.modify_strengths, request)
    except VideoSourceError as exc:
        raise InputError(f"media.url: {exc}") from None
    width, height = plan.output_width, plan.output_height
    first = layout.first_frame
    native_first = sources.picture(first, "first_frame", plan.native_width, plan.native_height) if first else None
    native = backend.generate(plan, on_step, should_cancel, condition_pixels(layout, guide, native_first),
                              preview=PartPreview(preview, plan) if preview is not None else None, guide=guide)
    copy = backend.round_trip(guide.frames) if layout.detail > 0 else None  # the source as the model sees it
    head = (lambda: sources.picture(first, "first_frame", width, height)) if first else None  # noqa: E731
    part = iter_delivered_part(native, plan, width=width, height=height, head_frame=head)
    frames = _source_errors_as_input(iter_delivered_edit(layout, part, copy), sources)
    return RenderedClip(plan=plan, width=width, height=height, fps=plan.output_fps, total=plan.output_frames,
                        loop=False, frames=_until_cancelled(frames, should_cancel))


def _source_errors_as_input(frames: Iterator[np.ndarray], sources: KeyframeSources) -> Iterator[np.ndarray]:
    """A source that stops decoding while it is delivered fails the job as an input error, like one that never
    decoded (it decoded once already, for the model, so this is rare). Holds ``sources`` until the last frame:
    a fetched source lives in their scratch directory, removed with them, and delivery reads it again."""
    try:
        yield from frames
    except VideoSourceError as exc:
        raise InputError(f"media.url: {exc}") from None


def _until_cancelled(frames: Iterator[np.ndarray], should_cancel: CancelCheck) -> Iterator[np.ndarray]:
    """``frames``, raising :class:`GenerationCancelled` before any frame, or after the last, once
    ``should_cancel()`` is true: the encoder pulling them then stops and publishes nothing."""
    for index, frame in enumerate(frames):
        if should_cancel():
            raise GenerationCancelled(f"cancelled while assembling and encoding, before frame {index + 1}")
        yield frame
    if should_cancel():
        raise GenerationCancelled("cancelled after the last frame was encoded")


def _deliver(
    native: np.ndarray, plan: Plan, request: GenerationRequest, sources: KeyframeSources | None,
) -> RenderedClip:
    """``[extended source] + new part + [reverse-extended source]``, the new part joined onto its neighbours."""
    width, height = plan.output_width, plan.output_height
    parts: list[Iterator[np.ndarray]] = []
    total = plan.output_frames
    keyframes = request.keyframes
    head = tail = None
    if keyframes is not None and isinstance(keyframes.frame0, GenerationKeyframe):
        head = sources.source_path(request, "frame0")  # type: ignore[union-attr]
    if keyframes is not None and isinstance(keyframes.frame1, GenerationKeyframe):
        tail = sources.source_path(request, "frame1")  # type: ignore[union-attr]
    head_last: list[np.ndarray] = []  # the extended source's last frame, kept as it streams past
    if head is not None:
        total += probe_mp4(head).frames
        parts.append(_remember_last(iter_clip_frames(head, width, height), head_last))
    tail_frames: Iterator[np.ndarray] = iter(())
    tail_first = None  # a reverse-extended source's first frame, read before the new part needs it
    if tail is not None:
        total += probe_mp4(tail).frames
        tail_frames = iter_clip_frames(tail, width, height)
        tail_first = next(tail_frames, None)
    head_frame, tail_frame = _image_joints(request, sources, width, height)
    if head is not None:
        head_frame = lambda: head_last[-1]  # noqa: E731 (read when the new part starts)
    if tail_first is not None:
        tail_frame = lambda: tail_first  # noqa: E731
    parts.append(iter_delivered_part(native, plan, width=width, height=height,
                                     head_frame=head_frame, tail_frame=tail_frame))
    if tail_first is not None:
        parts.append(itertools.chain([tail_first], tail_frames))
    return RenderedClip(plan=plan, width=width, height=height, fps=plan.output_fps, total=total,
                        loop=request.loop, frames=itertools.chain(*parts))


def _remember_last(stream: Iterator[np.ndarray], kept: list[np.ndarray]) -> Iterator[np.ndarray]:
    """``stream`` unchanged, its latest frame kept in ``kept`` (the one frame a joint needs, no second decode)."""
    for frame in stream:
        kept[:] = [frame]
        yield frame


def _image_joints(
    request: GenerationRequest, sources: KeyframeSources | None, width: int, height: int,
) -> tuple[Callable[[], np.ndarray] | None, Callable[[], np.ndarray] | None]:
    """The keyframe images the new part's first and last frames must become, fitted to the output size
    (``media.seam``): the start image at the head; the end image at the tail, or the start image again
    when the clip loops on it."""
    keyframes = request.keyframes
    if keyframes is None or sources is None:
        return None, None

    def image(slot: str) -> Callable[[], np.ndarray]:
        return lambda: sources.image(request, slot, width, height)

    start = isinstance(keyframes.frame0, ImageKeyframe)
    head = image("frame0") if start else None
    tail = image("frame1") if isinstance(keyframes.frame1, ImageKeyframe) else None
    if request.loop and start:
        tail = head
    return head, tail
