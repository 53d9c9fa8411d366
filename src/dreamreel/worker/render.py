"""One request -> one MP4 and poster on disk: plan, generate native frames, encode to the exact output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dreamreel.core.concepts import apply_concepts
from dreamreel.core.request import GenerationRequest
from dreamreel.engine.backends.base import Backend, CancelCheck, StepCallback
from dreamreel.engine.plan import Plan
from dreamreel.engine.planner import plan_generation
from dreamreel.media.encode import EncodedVideo, encode_mp4, write_poster


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
) -> RenderedClip:
    plan = plan_generation(
        apply_concepts(request),  # camera concepts reach the model as prompt words (core/concepts.py)
        backend.native_grid(),
        seed=seed,
        steps=steps or backend.default_steps,
        guidance_scale=backend.default_guidance,
    )
    if on_plan is not None:  # e.g. log the exact prompt the model receives
        on_plan(plan)
    frames = backend.generate(plan, on_step, should_cancel)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    video = encode_mp4(
        frames,
        video_path,
        width=plan.output_width,
        height=plan.output_height,
        fps=plan.output_fps,
        output_frames=plan.output_frames,
    )
    poster = None
    if poster_path is not None:
        poster = write_poster(frames[0], poster_path, width=plan.output_width, height=plan.output_height)
    return RenderedClip(plan=plan, video=video, poster=poster)
