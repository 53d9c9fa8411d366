"""Luma Dream Machine v1 (what the official ``lumaai`` SDK calls), mounted at ``/dream-machine/v1``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from dreamreel.api.deps import Body, Owner, Service
from dreamreel.api.dialects.base import Dialect, Notification, json_body
from dreamreel.api.dialects.luma_schema import ERRORS, LumaCredits, LumaGeneration, LumaGenerationList, LumaPing
from dreamreel.api.errors import parse_body
from dreamreel.api.schema import json_request_body
from dreamreel.api.signing import WebhookSigner
from dreamreel.api.urls import FileUrls, file_urls
from dreamreel.core.concepts import camera_motions, supported_concepts
from dreamreel.core.errors import DreamreelError, InvalidRequest
from dreamreel.core.generation import Generation, Kind, State
from dreamreel.core.request import (
    DEFAULT_MODEL,
    MAX_PROMPT_CHARS,
    MAX_URL_CHARS,
    AspectRatio,
    GenerationRequest,
    Keyframes,
    ModelName,
    Resolution,
)

PREFIX = "/dream-machine/v1"
DEFAULT_RESOLUTION = Resolution.P720
"""Luma's API delivers 720p unless asked otherwise (the AI/ML page shows Ray 2's 1280x720 originals)."""

STATUS_WORDS = {
    State.QUEUED: "queued",
    State.RUNNING: "dreaming",
    State.COMPLETED: "completed",
    State.FAILED: "failed",
    State.CANCELLED: "failed",
}

NOTIFY_ON = frozenset({State.RUNNING, State.COMPLETED, State.FAILED})
"""Luma: "a POST request with Generation object ... when the generation is dreaming, completed, or failed"."""


class LumaConcept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: StrictStr = Field(min_length=1, max_length=100)


class LumaVideoCreate(BaseModel):
    """Body of ``POST /generations`` and ``/generations/video`` as the SDK sends it."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName = DEFAULT_MODEL
    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    aspect_ratio: AspectRatio = AspectRatio.LANDSCAPE
    resolution: Resolution = DEFAULT_RESOLUTION
    duration: Literal["5s", "9s"] = "5s"
    loop: StrictBool = False
    keyframes: Keyframes | None = None
    concepts: list[LumaConcept] | None = Field(default=None, max_length=10)
    callback_url: StrictStr | None = Field(default=None, max_length=MAX_URL_CHARS)
    generation_type: Literal["video"] | None = None

    def to_core(self) -> GenerationRequest:
        return GenerationRequest(
            prompt=self.prompt,
            model=self.model,
            aspect_ratio=self.aspect_ratio,
            resolution=self.resolution,
            duration_s=5 if self.duration == "5s" else 9,
            loop=self.loop,
            keyframes=self.keyframes,
            concepts=tuple(c.key for c in self.concepts or ()),
            callback_url=self.callback_url,
        )


class LumaUpscale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation_type: Literal["upscale_video"] | None = None
    resolution: Resolution | None = None
    callback_url: StrictStr | None = None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")


def render_request(request: GenerationRequest) -> dict[str, Any]:
    return {
        "generation_type": "video",
        "model": request.model,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio.value,
        "resolution": request.resolution.value,
        "duration": f"{request.duration_s}s",
        "loop": request.loop,
        "keyframes": request.keyframes.model_dump() if request.keyframes else None,
        "concepts": [{"key": key} for key in request.concepts] or None,
        "callback_url": request.callback_url,
    }


def render_upscale_request(generation: Generation) -> dict[str, Any]:
    """The SDK's ``RequestUpscaleVideoGenerationRequest``: what an upscale was asked to do."""
    return {
        "generation_type": Kind.UPSCALE.value,
        "resolution": generation.request.resolution.value,
        "callback_url": generation.request.callback_url,
    }


def render_generation(generation: Generation, urls: FileUrls) -> dict[str, Any]:
    """The Luma Generation object: ``id, state, failure_reason, created_at, model, ..., assets``.

    ``progress_video`` (a low-res preview of the clip so far) is shown only while the state is dreaming.
    """
    assets = generation.assets
    progress_video = assets.progress_video if generation.state is State.RUNNING else None
    has_assets = any((assets.video, assets.image, progress_video))
    return {
        "id": generation.id,
        "generation_type": "video",
        "state": STATUS_WORDS[generation.state],
        "failure_reason": generation.failure_reason,
        "created_at": _iso(generation.created_at),
        "model": generation.model,
        "assets": {
            "video": urls.url(assets.video),
            "image": urls.url(assets.image),
            "progress_video": urls.url(progress_video),
        }
        if has_assets
        else None,
        "request": render_upscale_request(generation)
        if generation.kind is Kind.UPSCALE
        else render_request(generation.request),
    }


router = APIRouter(prefix=PREFIX, tags=["luma"])


@router.post("/generations", status_code=201, response_model=LumaGeneration, responses=ERRORS,
             openapi_extra=json_request_body(LumaVideoCreate))
@router.post("/generations/video", status_code=201, response_model=LumaGeneration, responses=ERRORS,
             openapi_extra=json_request_body(LumaVideoCreate))
def create_generation(request: Request, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue a text-to-video generation; returns the Generation object in state ``queued``."""
    parsed = parse_body(LumaVideoCreate, body)
    generation = service.submit(parsed.to_core(), owner=owner, dialect=DIALECT.name, notify_on=DIALECT.notify_on)
    return render_generation(generation, file_urls(request))


@router.get("/generations", response_model=LumaGenerationList, responses=ERRORS)
def list_generations(
    request: Request,
    service: Service,
    owner: Owner,
    limit: int = Query(default=100, ge=0, le=1000),
    offset: int = Query(default=0, ge=0, le=2**62),  # SQLite/PostgreSQL integers are 64-bit
) -> dict[str, Any]:
    """Newest first, paged with ``limit``/``offset``."""
    generations, total = service.list(owner=owner, limit=limit, offset=offset)
    return {
        "generations": [render_generation(g, file_urls(request)) for g in generations],
        "count": len(generations),
        "has_more": offset + len(generations) < total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/generations/concepts/list", response_model=list[str], responses=ERRORS)
def list_concepts() -> list[str]:
    """Concept keys this server honours in ``concepts: [{"key": ...}]`` (camera moves; core/concepts.py)."""
    return supported_concepts()


@router.get("/generations/camera_motion/list", response_model=list[str], responses=ERRORS)
def list_camera_motions() -> list[str]:
    """Camera-motion phrases to write into prompts (what the embedded model was trained on)."""
    return camera_motions()


@router.get("/generations/{generation_id}", response_model=LumaGeneration, responses=ERRORS)
def get_generation(request: Request, generation_id: str, service: Service, owner: Owner) -> dict[str, Any]:
    return render_generation(service.get(generation_id, owner=owner), file_urls(request))


@router.delete("/generations/{generation_id}", status_code=204, response_class=Response, responses=ERRORS)
def delete_generation(generation_id: str, service: Service, owner: Owner) -> Response:
    service.delete(generation_id, owner=owner)
    return Response(status_code=204)


@router.post("/generations/{generation_id}/upscale", status_code=201, response_model=LumaGeneration, responses=ERRORS,
             openapi_extra=json_request_body(LumaUpscale, required=False))
def upscale_generation(
    request: Request, generation_id: str, body: Body, service: Service, owner: Owner
) -> dict[str, Any]:
    """Queue a re-encode of a completed generation at a higher resolution; returns the *new* generation.

    The source must be the caller's (else 404) and completed (else 409); ``resolution`` is required and
    must be higher than the source's (else 422).
    """
    parsed = parse_body(LumaUpscale, body) if body.strip() else LumaUpscale()
    if parsed.resolution is None:
        raise InvalidRequest("resolution is required (1080p or 4k, higher than the source's)", field="resolution")
    generation = service.upscale(
        generation_id, resolution=parsed.resolution, owner=owner, dialect=DIALECT.name,
        status_words=DIALECT.status_words, notify_on=DIALECT.notify_on, callback_url=parsed.callback_url,
    )
    return render_generation(generation, file_urls(request))


@router.get("/credits", response_model=LumaCredits, responses=ERRORS)
def credits(service: Service, owner: Owner) -> dict[str, float]:
    """The caller's balance from the ledger, in units (``core/metering.py``): its credits less what it was
    charged and what its queued and running generations hold. A key without a credit limit reports
    ``UNLIMITED_CREDITS`` less the same."""
    return {"credit_balance": service.credit_balance(owner)}


@router.get("/ping", response_model=LumaPing, responses=ERRORS)
def ping() -> dict[str, str]:
    return {"message": "pong"}


def error_response(exc: DreamreelError) -> JSONResponse:
    """Luma's error body: ``{"detail": "<message>"}``."""
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})


def render_callback(generation: Generation, urls: FileUrls, signer: WebhookSigner) -> Notification:
    """Luma: the Generation object, unsigned (Luma documents no signature)."""
    return json_body(render_generation(generation, urls)), {"content-type": "application/json"}


DIALECT = Dialect(name="luma", router=router, path_prefixes=(PREFIX,), status_words=STATUS_WORDS,
                  render_error=error_response, notify_on=NOTIFY_ON, render_callback=render_callback)
