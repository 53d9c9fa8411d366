"""Upscale: a new generation that re-encodes a completed one's video at a higher resolution.

Why a new generation (its own id) and not the source updated in place: the Luma SDK types a
generation's ``request`` as one of several request kinds, one of them the upscale request
(``generation_type: "upscale_video"``, ``resolution``, ``callback_url``), so an upscale is a generation
of its own with its own state machine, callbacks and assets; the source keeps its video, which stays
valid for extends and other upscales. Upscaling is durable work like any generation: the job is
committed before the answer and a worker runs it (``worker/upscale.py``).
"""

from __future__ import annotations

from pydantic import ValidationError

from dreamreel.core.errors import Conflict, InvalidRequest, NotSupported
from dreamreel.core.generation import Generation, Kind, State
from dreamreel.core.request import GenerationRequest, Resolution
from dreamreel.core.service import GenerationService


def submit_upscale(
    service: GenerationService,
    source_id: str,
    *,
    resolution: Resolution,
    owner: str,
    dialect: str,
    callback_url: str | None = None,
) -> Generation:
    """Queue an upscale of ``source_id`` (the caller's, completed) to ``resolution`` (higher than its own)."""
    source = service.get(source_id, owner=owner)  # someone else's or missing: 404
    if source.state is not State.COMPLETED or source.video_info is None or source.assets.video is None:
        state = source.status_for(dialect) if dialect in ("luma", "fal", "aiml") else source.state.value
        raise Conflict(f"generation {source_id} is {state}; only a completed generation can be upscaled")
    current = source.request.resolution
    if resolution.short_side <= current.short_side:
        higher = [r.value for r in Resolution if r.short_side > current.short_side]
        hint = f"upscale to one of {', '.join(higher)}" if higher else "it is already at the highest resolution"
        raise NotSupported(
            f"resolution {resolution.value} is not higher than the source's {current.value}; {hint}",
            field="resolution",
        )
    try:
        request = GenerationRequest.model_validate(
            source.request.model_dump() | {"resolution": resolution, "callback_url": callback_url}
        )
    except ValidationError as exc:
        raise InvalidRequest(f"invalid callback_url: {exc.errors()[0]['msg']}", field="callback_url") from exc
    generation = Generation.new(owner=owner, dialect=dialect, request=request, seed=source.seed, kind=Kind.UPSCALE,
                                source_id=source.id)
    return service.store.create(generation)
