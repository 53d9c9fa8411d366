"""Video edits on any model family: the plan, what the denoising is held to, and the delivered frames.

**Modify** (video-to-video, SDEdit): the source is sampled at the native size and fps, encoded, noised to the
level its mode names (the model's ``modify_strengths`` table: the share of the schedule that runs) and
denoised under the prompt. ``first_frame`` is a start keyframe (frame 0's condition, joined as
``media/seam.py`` joins one). The output keeps the source's aspect and length (``core/edits.py``).

**Reframe** (outpaint): the source is placed in a canvas of the new aspect at its window
(``core.edits.reframe_window``); the native canvas is the source at the window's native box with its edge
pixels carried outward (so the border's latent cells encode sensibly). The denoising runs from pure noise
and, after every step, the latents inside the window are held to the canvas's noised to that step's level
(``backends.common.LatentHold``), fractionally in the cells the window's border cuts: the model makes only
the outside, continuing what the window shows. VACE takes the same canvas as its own masked conditioning.
Delivered, the window holds the source's own pixels and the outside is joined to them
(``media/reframe.py``).

Timing: the native clip and the delivered clip both span the source from its first frame to its last, evenly
(``media.video_source.iter_sampled_frames`` and ``media.resample`` pin both ends), so frame ``i`` of either
is the same moment. A source longer than one pass (``max_frames`` at the native fps) is sampled sparser, as
any long clip is (``engine/plan.py``, "Length").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamreel.core.capabilities import FAMILY_NEEDS
from dreamreel.core.concepts import model_prompt
from dreamreel.core.conditioning import Control
from dreamreel.core.edits import SourceFacts, Window, reframe_window
from dreamreel.core.request import GenerationRequest, ReframeEdit
from dreamreel.engine.backends.base import EditGuide
from dreamreel.engine.plan import (
    JOINT_FADE_LATENT_FRAMES,
    OUTPUT_FPS,
    Condition,
    NativeGrid,
    Plan,
    native_frame_count,
    native_size,
)
from dreamreel.media.encode import scale_rgb
from dreamreel.media.reframe import WindowPaste
from dreamreel.media.resample import iter_output_frames
from dreamreel.media.seam import settle_weight
from dreamreel.media.video_source import iter_sampled_frames, sample_frames


@dataclass(frozen=True)
class EditLayout:
    """A planned edit: the plan, its source, and (reframe) where the source sits in output and native pixels."""

    plan: Plan
    source: Path
    window: Window | None = None
    native_window: Window | None = None
    first_frame: str | None = None
    detail: float = 0.0
    """How much of the source's own detail a modify keeps (:func:`detail_weight`)."""


def detail_weight(rank: int) -> float:
    """The share of the source's detail a modify of mode ``rank`` (0 = ``adhere_1`` .. 8 = ``reimagine_3``)
    keeps: all of it at ``adhere_1``, none at ``reimagine_3``, linear between.

    Why: the model works at its native size through its VAE, which cannot carry a source's fine detail (the
    embedded model's VAE alone costs a source 12 dB at 540p: docs/benchmarks.md), so even a modify that changed
    nothing would come back blurred. The delivered frame is the model's plus the weighted difference between
    the source and the model's own copy of it (the source through the VAE, ``Backend.round_trip``): what the
    model changed arrives, what it did not change stays the source's; freer modes keep less of it, so a
    reimagined scene does not carry the old one's edges."""
    return max(0.0, 1.0 - rank / 8)


def plan_edit(
    request: GenerationRequest, facts: SourceFacts, source: Path, grid: NativeGrid, *, family: str, seed: int,
    steps: int, guidance_scale: float,
) -> EditLayout:
    """The plan of ``request``'s edit (its output fields already set from ``facts``: ``core.edits.output_of``)."""
    edit = request.edit
    if edit is None:
        raise ValueError("not an edit")
    native_width, native_height = native_size(request, grid)
    width, height = request.output_size
    native_frames = native_frame_count(facts.duration_s, grid)
    last = native_frames - 1
    needs = {control for group in FAMILY_NEEDS.get(family, ()) for control in group}
    conditions: list[Condition] = []
    if edit.first_frame is not None or Control.START_IMAGE in needs:
        conditions.append(Condition("frame0", "image", 0))
    if Control.END_IMAGE in needs:
        conditions.append(Condition("frame1", "image", last))
    plan = Plan(
        prompt=model_prompt(request, moved_virtually=False),
        negative_prompt=request.negative_prompt,
        seed=seed,
        native_width=native_width,
        native_height=native_height,
        native_frames=native_frames,
        native_fps=grid.fps,
        output_width=width,
        output_height=height,
        output_frames=max(1, round(facts.duration_s * OUTPUT_FPS)),
        output_fps=OUTPUT_FPS,
        num_inference_steps=steps,
        # Without a prompt (Luma's edits make it optional) guidance would compare the empty prompt with itself:
        # half the transformer calls for nothing.
        guidance_scale=guidance_scale if request.prompt.strip() else 1.0,
        conditions=tuple(conditions),
        joint_fade=JOINT_FADE_LATENT_FRAMES * grid.frame_multiple if edit.first_frame is not None else 0,
        source_stride=max(1, round(OUTPUT_FPS / grid.fps)),
    )
    window = native_window = None
    if isinstance(edit, ReframeEdit):
        window = reframe_window(edit, (width, height), (facts.width, facts.height))
        native_window = _clamped(window.scaled(native_width / width, native_height / height), native_width,
                                 native_height)
    mode = getattr(edit, "mode", None)
    return EditLayout(plan=plan, source=source, window=window, native_window=native_window,
                      first_frame=edit.first_frame, detail=detail_weight(mode.rank) if mode is not None else 0.0)


def _clamped(window: Window, width: int, height: int) -> Window:
    """``window`` inside a ``width x height`` canvas and at least one pixel each way (a tiny native canvas)."""
    x0, y0 = min(max(0, window.x0), width - 1), min(max(0, window.y0), height - 1)
    return Window(x0, y0, min(width, max(x0 + 1, window.x1)), min(height, max(y0 + 1, window.y1)))


def edit_guide(layout: EditLayout, strengths: tuple[float, ...], request: GenerationRequest) -> EditGuide:
    """What the denoising is held to: the source at native size (modify, at its mode's strength) or the canvas
    and its window mask (reframe)."""
    plan, edit = layout.plan, request.edit
    free_first = layout.first_frame is not None
    if layout.native_window is None:
        frames = sample_frames(layout.source, plan.native_frames, plan.native_width, plan.native_height)
        mode = getattr(edit, "mode", None)
        strength = strengths[mode.rank] if mode is not None else 1.0
        return EditGuide(frames=frames, strength=strength, free_first_frame=free_first)
    win = layout.native_window
    inside = sample_frames(layout.source, plan.native_frames, win.width, win.height)
    pad = ((0, 0), (win.y0, plan.native_height - win.y1), (win.x0, plan.native_width - win.x1), (0, 0))
    canvas = np.pad(inside, pad, mode="edge")
    mask = np.zeros((plan.native_height, plan.native_width), dtype=np.float32)
    mask[win.y0 : win.y1, win.x0 : win.x1] = 1.0
    return EditGuide(frames=canvas, mask=mask, free_first_frame=free_first)


def condition_pixels(layout: EditLayout, guide: EditGuide, first_frame: np.ndarray | None) -> list[np.ndarray]:
    """Pixels of the plan's conditions: ``first_frame`` (native size) at frame 0 where given, else the
    guide's own first frame for a family that cannot start without an image, and its last frame at the end
    for one that cannot end without one (Wan FLF2V)."""
    pixels = []
    for condition in layout.plan.conditions:
        if condition.frame_index == 0:
            pixels.append(first_frame[None] if first_frame is not None else guide.frames[:1])
        else:
            pixels.append(guide.frames[-1:])
    return pixels


def iter_delivered_edit(
    layout: EditLayout, part: Iterator[np.ndarray], copy: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """The delivered frames: the model's part with the source's detail kept (modify: :func:`detail_weight`;
    ``copy`` is the source's native frames through the model's VAE), or with the source's own pixels inside
    the window and the outside joined to them (reframe)."""
    if layout.window is None:
        if copy is None or layout.detail <= 0:
            yield from part
        else:
            yield from _with_source_detail(layout, part, copy)
        return
    window, plan = layout.window, layout.plan
    paste = WindowPaste(plan.output_width, plan.output_height, window)
    sources = iter_sampled_frames(layout.source, plan.output_frames, window.width, window.height)
    for frame, source in zip(part, sources, strict=True):
        yield paste(frame, source)


def _with_source_detail(layout: EditLayout, part: Iterator[np.ndarray], copy: np.ndarray) -> Iterator[np.ndarray]:
    """Each frame of ``part`` plus ``layout.detail`` x (source - the model's copy of it), at the output size.
    Next to a ``first_frame`` the detail fades in along the joint's own fade, so the clip still starts on the
    image."""
    plan = layout.plan
    width, height = plan.output_width, plan.output_height
    sources = iter_sampled_frames(layout.source, plan.output_frames, width, height)
    copies = iter_output_frames(copy, plan.output_frames)
    fade = plan.joint_fade * plan.source_stride
    for index, (frame, source, model_copy) in enumerate(zip(part, sources, copies, strict=True)):
        weight = layout.detail * (1.0 - (settle_weight(index, fade) if layout.first_frame else 0.0))
        if frame.shape[:2] != (height, width):
            frame = scale_rgb(frame, width, height)
        if weight <= 0:
            yield frame
            continue
        detail = source.astype(np.float32) - scale_rgb(model_copy, width, height).astype(np.float32)
        yield np.clip(frame.astype(np.float32) + weight * detail + 0.5, 0, 255).astype(np.uint8)
