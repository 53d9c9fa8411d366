"""Luma Dream Machine v1 (what the official ``lumaai`` SDK calls), mounted at ``/dream-machine/v1``.

Video edits are Luma's ``generations/video/modify`` and ``generations/video/reframe`` (``lumaai`` 1.21's
``client.generations.video.modify/reframe``), plus one extension field, ``resolution``; their source
(``media.url``) may also be ``generation:<id>`` or ``upload:<id>``, and this server's own file URL of a clip is
read as its ``generation:<id>`` (``api/edits.py``). ``POST /generations/{id}/audio`` (``add_audio``) is served by
a model that makes sound (family ``ltx2``) and refused (422) where none is configured.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from dreamreel.api.deps import Body, Owner, Service
from dreamreel.api.dialects.base import Dialect, Notification, json_body
from dreamreel.api.dialects.luma_schema import ERRORS, LumaCredits, LumaGeneration, LumaGenerationList, LumaPing
from dreamreel.api.edits import with_own_references
from dreamreel.api.errors import parse_body
from dreamreel.api.extensions import ControlFields, render_controls
from dreamreel.api.fast_polls import fast_poll
from dreamreel.api.reads import json_response, run_read, store_read
from dreamreel.api.schema import json_request_body
from dreamreel.api.signing import WebhookSigner
from dreamreel.api.urls import FileUrls, file_urls
from dreamreel.core.capabilities import DEFAULT_FAMILIES, makes_sound
from dreamreel.core.concepts import camera_motions, supported_concepts
from dreamreel.core.edits import GENERATION_SCHEME
from dreamreel.core.errors import DreamreelError, InvalidRequest, NotSupported
from dreamreel.core.generation import Generation, Kind, State
from dreamreel.core.request import (
    DEFAULT_MODEL,
    MAX_PROMPT_CHARS,
    MAX_URL_CHARS,
    AddAudioEdit,
    AspectRatio,
    GenerationRequest,
    Keyframes,
    ModelName,
    ModifyEdit,
    ModifyMode,
    ReframeEdit,
    ReframePlacement,
    Resolution,
)
from dreamreel.core.service import GenerationService

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


class LumaVideoCreate(ControlFields):
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
            **self.controls(),
        )


class LumaMedia(BaseModel):
    """``{"url": ...}``: the source video (http(s), ``generation:<id>``, ``upload:<id>``, or this server's file
    URL of a clip)."""

    model_config = ConfigDict(extra="forbid")
    url: StrictStr = Field(min_length=1, max_length=MAX_URL_CHARS)


class LumaFirstFrame(BaseModel):
    """``{"url": ...}``: an image the result starts on (http(s), ``data:``, ``upload:<id>``)."""

    model_config = ConfigDict(extra="forbid")
    url: StrictStr = Field(min_length=1, max_length=64 * 1024 * 1024)


class LumaEdit(ControlFields):
    """What modify and reframe share (the SDK's ``VideoModifyParams``/``VideoReframeParams``)."""

    model_config = ConfigDict(extra="forbid")

    media: LumaMedia
    model: ModelName
    prompt: StrictStr | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    first_frame: LumaFirstFrame | None = None
    callback_url: StrictStr | None = Field(default=None, max_length=MAX_URL_CHARS)
    resolution: Resolution | None = None
    """Extension: the output resolution; absent: the source's resolution class (its short side snapped to
    540p / 720p / 1080p / 4k)."""


class LumaModify(LumaEdit):
    """``POST /generations/video/modify``: the source re-made under the prompt; ``mode`` from ``adhere_1``
    (closest to the source) through ``flex_1..3`` to ``reimagine_3`` (freest). Output: the source's aspect and
    length."""

    generation_type: Literal["modify_video"]
    mode: ModifyMode

    def to_core(self) -> GenerationRequest:
        edit = ModifyEdit(source=self.media.url, mode=self.mode, resolution=self.resolution,
                          first_frame=self.first_frame.url if self.first_frame else None)
        return GenerationRequest(edit=edit, prompt=self.prompt or "", model=self.model,
                                 callback_url=self.callback_url, **self.controls())


class LumaReframe(LumaEdit, ReframePlacement):
    """``POST /generations/video/reframe``: the source placed in a canvas of ``aspect_ratio``, the rest
    generated. Placement in output pixels: ``x_start..x_end`` x ``y_start..y_end`` (the box the source is resized
    into), else ``resized_width/height`` and ``grid_position_x/y`` (its size and top-left corner); unset: centred
    at the largest size that fits. Output: the source's length."""

    generation_type: Literal["reframe_video"]
    aspect_ratio: AspectRatio

    def to_core(self) -> GenerationRequest:
        edit = ReframeEdit(source=self.media.url, resolution=self.resolution,
                           first_frame=self.first_frame.url if self.first_frame else None, **self.placement())
        return GenerationRequest(edit=edit, prompt=self.prompt or "", model=self.model,
                                 aspect_ratio=self.aspect_ratio, callback_url=self.callback_url, **self.controls())


class LumaAudio(ControlFields):
    """``POST /generations/{id}/audio`` (the SDK's ``GenerationAudioParams``): what the sound should be
    (``negative_prompt`` is Luma's own field here), plus the extension fields."""

    model_config = ConfigDict(extra="forbid")
    generation_type: Literal["add_audio"] | None = None
    prompt: StrictStr | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    callback_url: StrictStr | None = Field(default=None, max_length=MAX_URL_CHARS)


class LumaUpscale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation_type: Literal["upscale_video"] | None = None
    resolution: Resolution | None = None
    callback_url: StrictStr | None = None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")


def render_request(request: GenerationRequest) -> dict[str, Any]:
    return {
        **render_controls(request),  # the response schema's field order: its extension fields come first
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


def render_edit_request(request: GenerationRequest) -> dict[str, Any]:
    """The SDK's ``RequestModifyVideoRequest``, ``RequestReframeVideoRequest`` or ``RequestAudioGenerationRequest``:
    what an edit was asked to do."""
    edit = request.edit
    if edit is None:
        raise ValueError("not an edit")
    if isinstance(edit, AddAudioEdit):
        return {**render_controls(request), "generation_type": "add_audio", "prompt": request.prompt or None,
                "callback_url": request.callback_url}
    first_frame = {"url": edit.first_frame} if edit.first_frame else None
    resolution = edit.resolution.value if edit.resolution else None
    if isinstance(edit, ModifyEdit):
        return {**render_controls(request), "generation_type": "modify_video", "model": request.model,
                "prompt": request.prompt or None,
                "mode": edit.mode.value, "media": {"url": edit.source}, "first_frame": first_frame,
                "resolution": resolution, "callback_url": request.callback_url}
    return {
        **render_controls(request),
        "generation_type": "reframe_video", "model": request.model, "prompt": request.prompt or None,
        "aspect_ratio": request.aspect_ratio.value, "media": {"url": edit.source}, "first_frame": first_frame,
        "resolution": resolution, "grid_position_x": edit.grid_position_x, "grid_position_y": edit.grid_position_y,
        "x_start": edit.x_start, "x_end": edit.x_end, "y_start": edit.y_start, "y_end": edit.y_end,
        "resized_width": edit.resized_width, "resized_height": edit.resized_height,
        "callback_url": request.callback_url,
    }


def render_any_request(generation: Generation) -> dict[str, Any]:
    """The Generation's ``request``: a video, upscale, modify or reframe request."""
    if generation.kind is Kind.UPSCALE:
        return render_upscale_request(generation)
    if generation.request.edit is not None:
        return render_edit_request(generation.request)
    return render_request(generation.request)


def render_generation(generation: Generation, urls: FileUrls, queue_position: int | None = None) -> dict[str, Any]:
    """The Luma Generation object: ``id, state, failure_reason, created_at, model, ..., assets``, plus the
    extensions ``seed``, ``progress`` and ``queue_position`` (given by a GET of a queued generation).

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
        "request": render_any_request(generation),
        "seed": generation.seed,
        "progress": progress_fraction(generation),
        "queue_position": queue_position if generation.state is State.QUEUED else None,
    }


def progress_fraction(generation: Generation) -> float:
    """The share of the denoising steps done, 0..1: 1 once completed, the last recorded step while running."""
    if generation.state is State.COMPLETED:
        return 1.0
    if not generation.progress_total:
        return 0.0
    return round(min(1.0, generation.progress_step / generation.progress_total), 4)


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


def _submit(request: Request, core: GenerationRequest, service: GenerationService, owner: str) -> dict[str, Any]:
    generation = service.submit(with_own_references(core, file_urls(request)), owner=owner, dialect=DIALECT.name,
                                notify_on=DIALECT.notify_on)
    return render_generation(generation, file_urls(request))


@router.post("/generations/video/modify", status_code=201, response_model=LumaGeneration, responses=ERRORS,
             openapi_extra=json_request_body(LumaModify))
def modify_video(request: Request, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue a modify of a source video (video-to-video under the prompt, as close to the source as ``mode``
    says). The output keeps the source's aspect ratio and length at its resolution class (or ``resolution``).
    A source this server can see (a generation, an upload) is checked now: not the caller's 404, unfinished 409,
    too long or not a video 422; a URL is fetched by the worker, and a problem there fails the generation."""
    return _submit(request, parse_body(LumaModify, body).to_core(), service, owner)


@router.post("/generations/video/reframe", status_code=201, response_model=LumaGeneration, responses=ERRORS,
             openapi_extra=json_request_body(LumaReframe))
def reframe_video(request: Request, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue a reframe: the source placed in a canvas of ``aspect_ratio`` and what lies outside it generated.
    The output keeps the source's length at its resolution class (or ``resolution``). Checks as for modify,
    and a placement box outside the canvas is a 422."""
    return _submit(request, parse_body(LumaReframe, body).to_core(), service, owner)


@router.get("/generations", response_model=LumaGenerationList, responses=ERRORS)
async def list_generations(
    request: Request,
    service: Service,
    owner: Owner,
    limit: int = Query(default=100, ge=0, le=1000),
    offset: int = Query(default=0, ge=0, le=2**62),  # SQLite/PostgreSQL integers are 64-bit
) -> JSONResponse:
    """Newest first, paged with ``limit``/``offset``."""
    generations, total = await run_read(service.list, owner=owner, limit=limit, offset=offset)
    urls = file_urls(request)
    return json_response({
        "generations": [render_generation(g, urls) for g in generations],
        "count": len(generations),
        "has_more": offset + len(generations) < total,
        "limit": limit,
        "offset": offset,
    })


@router.get("/generations/concepts/list", response_model=list[str], responses=ERRORS)
async def list_concepts() -> list[str]:
    """Concept keys this server honours in ``concepts: [{"key": ...}]`` (camera moves; core/concepts.py)."""
    return supported_concepts()


@router.get("/generations/camera_motion/list", response_model=list[str], responses=ERRORS)
async def list_camera_motions() -> list[str]:
    """Camera-motion phrases to write into prompts (what the embedded model was trained on)."""
    return camera_motions()


@router.get("/generations/{generation_id}", response_model=LumaGeneration, responses=ERRORS)
@fast_poll()
async def get_generation(request: Request, generation_id: str, service: Service, owner: Owner) -> JSONResponse:
    generation = await store_read(request, service.get, generation_id, owner=owner)
    position = None
    if generation.state is State.QUEUED:
        position = await store_read(request, service.queue_position, generation_id)
    return json_response(render_generation(generation, file_urls(request), position))


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


@router.post("/generations/{generation_id}/audio", status_code=201, response_model=LumaGeneration,
             responses=ERRORS, openapi_extra=json_request_body(LumaAudio, required=False))
def add_audio(request: Request, generation_id: str, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue sound for a completed generation's clip; returns the *new* generation (``request.generation_type``
    ``add_audio``), whose video is the source's picture, untouched, with an AAC track made for it under ``prompt``
    (steered away from ``negative_prompt``). Luma's Generation has no audio asset: ``assets.video`` carries the
    sound. A model that makes sound serves it (family ``ltx2``): the source's own model, else this server's default
    model; with neither, 422 (no audio model). The source must be the caller's (else 404), completed (else 409) and
    at most 10 s long (else 422)."""
    parsed = parse_body(LumaAudio, body) if body.strip() else LumaAudio()
    source = service.get(generation_id, owner=owner)
    families = service.families or DEFAULT_FAMILIES
    model = next((name for name in (source.model, DEFAULT_MODEL) if makes_sound(families.get(name, ""))), None)
    if model is None:
        raise NotSupported("add_audio: no audio model is configured on this server; generations are silent video",
                           field="generation_type")
    core = GenerationRequest(edit=AddAudioEdit(source=GENERATION_SCHEME + source.id), prompt=parsed.prompt or "",
                             model=model, callback_url=parsed.callback_url, **parsed.controls())
    return _submit(request, core, service, owner)


@router.get("/credits", response_model=LumaCredits, responses=ERRORS)
async def credits(service: Service, owner: Owner) -> dict[str, float]:
    """The caller's balance from the ledger, in units (``core/metering.py``): its credits less what it was
    charged and what its queued and running generations hold. A key without a credit limit reports
    ``UNLIMITED_CREDITS`` less the same."""
    return {"credit_balance": await run_read(service.credit_balance, owner)}


@router.get("/ping", response_model=LumaPing, responses=ERRORS)
async def ping() -> dict[str, str]:
    return {"message": "pong"}


def error_response(exc: DreamreelError) -> JSONResponse:
    """Luma's error body: ``{"detail": "<message>"}``."""
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})


def render_callback(generation: Generation, urls: FileUrls, signer: WebhookSigner) -> Notification:
    """Luma: the Generation object, unsigned (Luma documents no signature)."""
    return json_body(render_generation(generation, urls)), {"content-type": "application/json"}


DIALECT = Dialect(name="luma", router=router, path_prefixes=(PREFIX,), status_words=STATUS_WORDS,
                  render_error=error_response, notify_on=NOTIFY_ON, render_callback=render_callback)
