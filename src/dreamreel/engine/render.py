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
from pathlib import Path

import numpy as np

from dreamreel.core.capabilities import pins_last_frame
from dreamreel.core.edits import SourceFacts, output_of
from dreamreel.core.errors import InvalidRequest
from dreamreel.core.request import AddAudioEdit, GenerationKeyframe, GenerationRequest, ImageKeyframe
from dreamreel.engine.assemble import PartPreview, iter_delivered_part
from dreamreel.engine.backends.base import (
    Backend,
    CancelCheck,
    EditGuide,
    GenerationCancelled,
    PreviewSink,
    StepCallback,
)
from dreamreel.engine.edit import EditLayout, condition_pixels, edit_guide, iter_delivered_edit, plan_edit
from dreamreel.engine.inputs import InputError, KeyframeSources
from dreamreel.engine.plan import Plan, plan_generation
from dreamreel.media.audio import AudioTrack, clip_sound, concatenate
from dreamreel.media.clip import iter_clip_frames
from dreamreel.media.probe import probe_mp4, video_codec
from dreamreel.media.video_source import VideoSourceError, iter_sampled_frames, read_facts, sample_frames


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
    audio: AudioTrack | None = None
    """The clip's sound, exactly ``total / fps`` seconds, aligned with ``frames``; None (silent) unless the model
    makes sound (``Backend.last_audio``). An extension's sound is its source clips' own (silence for a silent
    one) around the new part's."""
    video_copy: Path | None = None
    """An H.264 MP4 whose video stream is exactly this clip's picture (an ``add_audio``): the encoder copies it
    instead of re-encoding ``frames`` (``media.encode.FrameStream``)."""


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
    clip = _deliver(native, plan, request, sources, getattr(backend, "last_audio", None))
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
    model denoises, and delivered as :func:`render` delivers a clip (with the sound the model made for it, where it
    makes sound). An add audio goes through :func:`_add_audio`."""
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
    if isinstance(request.edit, AddAudioEdit):
        return _add_audio(backend, layout, facts, sources, on_step=on_step, should_cancel=should_cancel,
                          preview=preview)
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
    # A model that makes sound made it for the edited picture, over the source's span: it is the edit's sound.
    track: AudioTrack | None = getattr(backend, "last_audio", None)
    return RenderedClip(plan=plan, width=width, height=height, fps=plan.output_fps, total=plan.output_frames,
                        loop=False, frames=_until_cancelled(frames, should_cancel),
                        audio=track.segment(0.0, plan.output_duration_s) if track is not None else None)


def _add_audio(
    backend: Backend, layout: EditLayout, facts: SourceFacts, sources: KeyframeSources, *, on_step: StepCallback,
    should_cancel: CancelCheck, preview: PreviewSink | None,
) -> RenderedClip:
    """Sound for the source's frames: the model runs with the source's native frames held as its picture
    (``EditGuide.sound_only``) and makes only the sound; the delivered picture is the source's own, its video
    stream copied untouched where it is already this clip (an H.264 clip of the output's size, rate and length:
    a generation of this server), else its frames re-encoded."""
    plan = layout.plan
    try:
        picture = sample_frames(layout.source, plan.native_frames, plan.native_width, plan.native_height)
    except VideoSourceError as exc:
        raise InputError(f"media.url: {exc}") from None
    backend.generate(plan, on_step, should_cancel, [], guide=EditGuide(frames=picture, sound_only=True),
                     preview=PartPreview(preview, plan) if preview is not None else None)
    track: AudioTrack | None = getattr(backend, "last_audio", None)
    if track is None:
        raise ValueError(f"model family {backend.name} makes no sound")
    width, height = plan.output_width, plan.output_height
    same = (video_codec(layout.source) == ("h264", width, height) and facts.frames == plan.output_frames
            and abs(facts.fps - plan.output_fps) < 1e-3)
    frames = _source_errors_as_input(iter_sampled_frames(layout.source, plan.output_frames, width, height), sources)
    return RenderedClip(plan=plan, width=width, height=height, fps=plan.output_fps, total=plan.output_frames,
                        loop=False, frames=_until_cancelled(frames, should_cancel),
                        audio=track.segment(0.0, plan.output_duration_s), video_copy=layout.source if same else None)


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
    track: AudioTrack | None = None,
) -> RenderedClip:
    """``[extended source] + new part + [reverse-extended source]``, the new part joined onto its neighbours, with
    ``track`` (the model's sound, if it makes any) laid out the same way (:func:`_delivered_sound`)."""
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
    head_count = tail_count = 0
    if head is not None:
        head_count = probe_mp4(head).frames
        total += head_count
        parts.append(_remember_last(iter_clip_frames(head, width, height), head_last))
    tail_frames: Iterator[np.ndarray] = iter(())
    tail_first = None  # a reverse-extended source's first frame, read before the new part needs it
    if tail is not None:
        tail_count = probe_mp4(tail).frames
        total += tail_count
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
    audio = None
    if track is not None:
        audio = _delivered_sound(track, plan, request.loop, (head, head_count), (tail, tail_count))
    return RenderedClip(plan=plan, width=width, height=height, fps=plan.output_fps, total=total,
                        loop=request.loop, frames=itertools.chain(*parts), audio=audio)


def part_sound(track: AudioTrack, plan: Plan, loop: bool) -> AudioTrack:
    """The new part's sound, in real time: the model's track from the moment of the part's first delivered frame
    (past an extension's anchor frames), for the part's delivered duration; a loop's closed onto its start
    (``AudioTrack.looped``). The track is never stretched: a part resampled in time keeps its sound's pace."""
    span_s = (plan.native_frames - 1 - plan.head_trim - plan.tail_trim) / plan.native_fps
    start_s = plan.head_trim / plan.native_fps + (span_s / max(1, plan.resample_frames - 1) if plan.drop_first else 0)
    if loop:
        return track.segment(start_s, max(0.0, track.duration_s - start_s)).looped(plan.output_duration_s)
    return track.segment(start_s, plan.output_duration_s)


def _delivered_sound(
    track: AudioTrack, plan: Plan, loop: bool, head: tuple[Path | None, int], tail: tuple[Path | None, int],
) -> AudioTrack:
    """:func:`part_sound` between the extended and reverse-extended clips' (path, frame count) own sound, each for
    its duration."""
    pieces = [part_sound(track, plan, loop)]
    rate, channels = track.sample_rate, track.channels
    if head[0] is not None:
        pieces.insert(0, clip_sound(head[0], head[1] / plan.output_fps, rate, channels))
    if tail[0] is not None:
        pieces.append(clip_sound(tail[0], tail[1] / plan.output_fps, rate, channels))
    return concatenate(pieces)


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
