"""AI/ML API v2 video dialect: ``POST /v2/video/generations`` and ``GET ...?generation_id=``.

Ids are shaped like the AI/ML API's (``<uuid>:luma/ray-2``); the uuid part is the generation id
every other dialect uses, so one generation can be fetched through any view. Errors use the
gateway's NestJS-style body ``{"statusCode", "message", "error"}``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr, field_validator

from dreamreel.api.deps import Body, Owner, Service
from dreamreel.api.dialects.aiml_schema import ERRORS, AimlCreated, AimlGeneration
from dreamreel.api.dialects.base import Dialect
from dreamreel.api.errors import parse_body
from dreamreel.api.extensions import ControlFields
from dreamreel.api.fast_polls import fast_poll
from dreamreel.api.reads import json_response, store_read
from dreamreel.api.schema import json_request_body
from dreamreel.api.urls import FileUrls, file_urls
from dreamreel.core.errors import DreamreelError, NotFound
from dreamreel.core.generation import Generation, State
from dreamreel.core.metering import units
from dreamreel.core.request import (
    MAX_PROMPT_CHARS,
    MODEL_NAME_PATTERN,
    PUBLIC_MODELS,
    AspectRatio,
    GenerationRequest,
    Keyframes,
    Resolution,
)
from dreamreel.core.service import GenerationService

PREFIX = "/v2"
VENDOR = "luma/"
AimlModel = Annotated[str, Field(pattern="^" + VENDOR + MODEL_NAME_PATTERN.removeprefix("^"),
                                 json_schema_extra={"examples": [VENDOR + name for name in PUBLIC_MODELS]})]
"""The AI/ML API's model strings, by one rule for every served name: the public name under the ``luma/`` vendor
prefix (``luma/ray-2``, ``luma/my-wan`` for a name a models config adds)."""

STATUS_WORDS = {
    State.QUEUED: "queued",
    State.RUNNING: "generating",
    State.COMPLETED: "completed",
    State.FAILED: "error",
    State.CANCELLED: "error",
}


class AimlVideoCreate(ControlFields):
    """The request schema of the AI/ML API's ``luma/ray-2`` page."""

    model_config = ConfigDict(extra="forbid")

    model: AimlModel
    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    resolution: Resolution = Resolution.P1080
    aspect_ratio: AspectRatio = AspectRatio.LANDSCAPE
    duration: Literal[5, 9, "5", "9"] = 5
    keyframes: Keyframes | None = None
    loop: StrictBool = False

    @field_validator("duration", mode="before")
    @classmethod
    def _no_bools(cls, value: Any) -> Any:
        if isinstance(value, (bool, float)):
            raise ValueError("duration must be 5 or 9")
        return value

    def to_core(self) -> GenerationRequest:
        return GenerationRequest(
            prompt=self.prompt,
            model=self.model.removeprefix(VENDOR),
            aspect_ratio=self.aspect_ratio,
            resolution=self.resolution,
            duration_s=int(self.duration),
            loop=self.loop,
            keyframes=self.keyframes,
            **self.controls(),
        )


def external_id(generation: Generation) -> str:
    return f"{generation.id}:{VENDOR}{generation.model}"


def internal_id(generation_id: str) -> str:
    """Accept both ``<uuid>:luma/ray-2`` and the bare uuid other dialects hand out."""
    return generation_id.split(":", 1)[0]


def render_generation(generation: Generation, urls: FileUrls, charged: int | None = None) -> dict[str, Any]:
    """The poll response; ``meta.usage`` is the ledger's charge for it (milli-units -> units), once completed."""
    info = generation.video_info
    video = None
    if generation.state == State.COMPLETED and generation.assets.video:
        video = {"url": urls.url(generation.assets.video), "duration": info.duration_s if info else None}
    error = None
    if generation.state in (State.FAILED, State.CANCELLED):
        error = {"name": "GenerationError" if generation.state == State.FAILED else "GenerationCancelled",
                 "message": generation.failure_reason or generation.state.value}
    used = units(charged) if charged is not None else None
    return {
        "id": external_id(generation),
        "status": STATUS_WORDS[generation.state],
        "video": video,
        "duration": info.duration_s if info and video else None,
        "error": error,
        "meta": {"usage": {"credits_used": used, "tokens_used": used}} if used is not None else None,
        "seed": generation.seed,
    }


router = APIRouter(prefix=PREFIX, tags=["aiml"])


@router.post("/video/generations", response_model=AimlCreated, responses=ERRORS,
             openapi_extra=json_request_body(AimlVideoCreate))
def create_generation(body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue a generation; answers ``{"id", "status": "queued"}`` as the AI/ML API does."""
    parsed = parse_body(AimlVideoCreate, body)
    generation = service.submit(parsed.to_core(), owner=owner, dialect=DIALECT.name)
    return {"id": external_id(generation), "status": STATUS_WORDS[generation.state]}


@router.get("/video/generations", response_model=AimlGeneration, responses=ERRORS)
@fast_poll(query={"generation_id": 300})
async def poll_generation(
    request: Request, service: Service, owner: Owner,
    generation_id: str = Query(min_length=1, max_length=300),
) -> JSONResponse:
    try:
        generation, charged = await store_read(request, _poll, service, internal_id(generation_id), owner)
    except NotFound:
        raise NotFound(f"generation {generation_id} not found") from None
    return json_response(render_generation(generation, file_urls(request), charged))


def _poll(service: GenerationService, generation_id: str, owner: str) -> tuple[Generation, int | None]:
    """The generation and what it was charged: a poll's store reads, in one trip to the read pool."""
    generation = service.get(generation_id, owner=owner)
    return generation, service.charged(generation)


def _reason(status: int) -> str:
    """The status line's phrase (``Too Many Requests``), as NestJS-style gateways put in ``error``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_response(exc: DreamreelError) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status_code,
        content={"statusCode": exc.status_code, "message": exc.message,
                 "error": _reason(exc.status_code)},
    )


DIALECT = Dialect(name="aiml", router=router, path_prefixes=(PREFIX + "/",), status_words=STATUS_WORDS,
                  render_error=error_response)
"""The AI/ML API documents no callbacks: polling only."""
