"""``GET /models``: the public model names this server serves and what each can do.

The dialects' own listings say only names (OpenAI's ``/v1/models``) or nothing (Luma); a client that builds its
choices from the server (the playground) needs to know which controls, speeds and adapters a name has before it
asks, rather than learning it from a 422, and whether anything will run it soon (its capacity: jobs queued and
running, workers with it loaded, live and busy workers, read from the store). Every field comes from the models config
(``engine/catalog.py``) and the capability table (``core/capabilities.py``), the same ones the service checks
requests by. Any key may read it; errors use ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request

from dreamreel.api.deps import Owner
from dreamreel.api.reads import run_read
from dreamreel.api.schema import DetailError, ResponseModel, error_responses
from dreamreel.core.capabilities import FAMILY_CONTROLS, makes_sound
from dreamreel.core.concepts import supported_concepts
from dreamreel.core.conditioning import Control
from dreamreel.core.request import SPEEDS, AspectRatio, DurationSeconds, Resolution

router = APIRouter(tags=["models"])

CONTROL_ORDER = tuple(Control)


class ModelCapabilities(ResponseModel):
    name: str
    """The public name to send as ``model``."""
    family: str
    """The backend family serving it (``core/capabilities.py``)."""
    default: bool
    """The name a request without ``model`` gets (where a dialect lets it be left out)."""
    speed: str
    """The speed a request to this name runs at when it names none."""
    speeds: list[str]
    controls: list[str]
    """What a request may use: ``start_image``, ``end_image``, ``extend``, ``reverse_extend``, ``loop`` (Luma's
    keyframes and ``loop``), ``modify``, ``reframe`` (the video edits), ``add_audio``. Interpolating is an
    extend and a reverse-extend in one request; every name can be upscaled."""
    makes_sound: bool
    loras: list[str]
    """LoRA adapters the models config offers for this name (the ``loras`` extension field)."""
    queued: int
    """Its jobs waiting for a worker now."""
    running: int
    """Its jobs being made now."""
    workers_loaded: int
    """Live workers that have its checkpoint loaded (any live worker can take its jobs, loading it first)."""


class WorkerCapacity(ResponseModel):
    live: int
    """Workers seen within the lease."""
    busy: int
    """Of those, the ones running a job."""


class ModelCatalog(ResponseModel):
    models: list[ModelCapabilities]
    """The configured names first, then the built-in aliases, as the config orders them."""
    aspect_ratios: list[str]
    resolutions: list[str]
    durations: list[str]
    """What Luma's ``duration`` takes (other dialects take any whole second from 1 to 20)."""
    concepts: list[str]
    """Camera concept keys (``concepts: [{"key": ...}]``)."""
    workers: WorkerCapacity


@router.get("/models", response_model=ModelCatalog, responses=error_responses(DetailError))
async def list_models(request: Request, _: Owner) -> dict[str, Any]:
    """Every public model name with its family, speeds, controls, adapters and capacity now (jobs queued and
    running, workers with it loaded), the request options every name shares, and the live workers."""
    catalog = request.app.state.catalog
    store = request.app.state.service.store
    lease_s = request.app.state.settings.lease_seconds
    counts, workers = await run_read(lambda: (store.queue_counts(), store.list_workers(lease_s)))
    jobs = {(state, model): count for state, model, count in counts}
    return {
        "models": [{
            "name": name,
            "family": entry.family,
            "default": name == catalog.default,
            "speed": entry.speed,
            "speeds": [speed for speed in SPEEDS if speed in entry.speeds],
            "controls": [control.value for control in CONTROL_ORDER
                         if control in FAMILY_CONTROLS.get(entry.family, frozenset())],
            "makes_sound": makes_sound(entry.family),
            "loras": sorted(entry.loras),
            "queued": jobs.get(("queued", name), 0),
            "running": jobs.get(("running", name), 0),
            "workers_loaded": sum(1 for worker in workers if name in worker.models),
        } for name, entry in catalog.models.items()],
        "aspect_ratios": [ratio.value for ratio in AspectRatio],
        "resolutions": [resolution.value for resolution in Resolution],
        "durations": [f"{seconds}s" for seconds in get_args(DurationSeconds)],
        "concepts": supported_concepts(),
        "workers": {"live": len(workers), "busy": sum(1 for worker in workers if worker.current_job)},
    }
