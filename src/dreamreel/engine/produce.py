"""One request through a loaded model into the delivered MP4, at the request's speed: the worker's and
``dreamreel generate``'s shared last mile.

The speed preset (``engine/speed.py``) decides the steps, the guidance, the step cache on the transformer and
the x264 preset; the request's LoRAs are applied. Both are put on the model for this clip only and taken off
however it ends (``engine/lora.py``, ``engine/step_cache.py``), so the next request starts from the model as
loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dreamreel.core.request import GenerationRequest
from dreamreel.engine.backends.base import Backend, CancelCheck, PreviewSink, StepCallback
from dreamreel.engine.catalog import ModelEntry
from dreamreel.engine.guidance import guidance_window
from dreamreel.engine.inputs import KeyframeSources
from dreamreel.engine.lora import applied_loras
from dreamreel.engine.plan import Plan
from dreamreel.engine.render import render
from dreamreel.engine.speed import SpeedPreset
from dreamreel.engine.step_cache import step_cache
from dreamreel.media.encode import EncodedClip, encode_clip
from dreamreel.media.x264 import X264_PRESETS


def produce_clip(
    backend: Backend,
    entry: ModelEntry,
    request: GenerationRequest,
    *,
    seed: int,
    sources: KeyframeSources | None,
    on_step: StepCallback,
    should_cancel: CancelCheck,
    video_path: str | Path,
    poster_path: str | Path | None = None,
    steps: int | None = None,
    preview: PreviewSink | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> EncodedClip:
    """Render ``request`` on ``backend`` (served as ``entry``) and encode it to ``video_path``.

    ``steps`` overrides the preset's (``dreamreel generate --steps``); the rest of the arguments are
    :func:`~dreamreel.engine.render.render`'s."""
    speed, preset = entry.preset(request.speed)
    steps = steps or preset.steps_for(entry.steps or backend.default_steps)
    with applied_loras(backend, entry, request.loras), speed_applied(backend.pipe, preset, steps) as open_guidance:
        clip = render(
            backend, request, seed=seed, sources=sources, on_step=chained(open_guidance, on_step),
            should_cancel=should_cancel,
            steps=steps,
            guidance_scale=entry.guidance if preset.guidance is None else preset.guidance,
            preview=preview, on_plan=on_plan,
        )
        # Inside: an extension's source clips and image joints are read as the frames stream into the encoder.
        return encode_clip(clip, video_path=video_path, poster_path=poster_path,
                           preset=preset.x264_preset or X264_PRESETS[speed])


@contextmanager
def speed_applied(pipe: Any, preset: SpeedPreset, steps: int) -> Iterator[StepCallback | None]:
    """``preset``'s step cache and guidance window on ``pipe`` for one run of ``steps`` steps; yields the step
    callback the guidance window needs (None without one). The bench applies presets through this too."""
    with step_cache(pipe, preset.cache, steps), guidance_window(pipe, preset.guidance_from, steps) as open_guidance:
        yield open_guidance


def chained(first: StepCallback | None, then: StepCallback) -> StepCallback:
    """``then``, preceded by ``first`` where there is one (the guidance window opens before progress is told; the
    worker's job clock notes the last step)."""
    if first is None:
        return then

    def on_step(step: int, total: int) -> None:
        first(step, total)
        then(step, total)

    return on_step
