"""fal's queue and sync APIs for the Ray 2 endpoints, as the official ``fal-client`` calls them.

Queue host (``FAL_QUEUE_RUN_HOST=<server>``): ``POST /fal-ai/luma-dream-machine/<endpoint>``, then
``GET|PUT /fal-ai/luma-dream-machine/requests/<id>[/status|/cancel]`` (status, result and cancel are
routed on the first two path segments, as fal does). Sync host (``FAL_RUN_HOST=<server>/fal-run``):
``POST /fal-run/fal-ai/luma-dream-machine/<endpoint>`` blocks and returns the result body. fal fails
requests by completing them with an error: status says ``COMPLETED`` and the result GET carries
the error (``{"detail", "error_type"}`` plus ``X-Fal-Error-Type``).

Video edits are fal's ``ray-2/modify`` and ``ray-2/reframe`` (and their ``ray-2-flash`` twins), queue and sync
like the rest: the source is ``video_url`` (also ``generation:<id>``, ``upload:<id>``, or this server's own
file URL of a clip, read as its ``generation:<id>``), ``image_url`` the first frame, and ``resolution`` an
extension field (absent: the source's resolution class).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr
from starlette.requests import ClientDisconnect

from dreamreel.api.deps import Body, Owner, Service
from dreamreel.api.dialects.base import Dialect, Notification, json_body
from dreamreel.api.dialects.fal_schema import (
    CANCEL_RESPONSES,
    ERRORS,
    RESULT_ERRORS,
    RUN_ERRORS,
    STATUS_RESPONSES,
    FalCancelRequested,
    FalQueued,
    FalQueueStatus,
    FalVideoResult,
)
from dreamreel.api.edits import rename_fields, rename_in_text, with_own_references
from dreamreel.api.errors import parse_body
from dreamreel.api.extensions import ControlFields
from dreamreel.api.fast_polls import fast_poll
from dreamreel.api.reads import json_response, run_read, store_read
from dreamreel.api.schema import json_request_body
from dreamreel.api.signing import WebhookSigner
from dreamreel.api.urls import FileUrls, file_urls
from dreamreel.core.errors import DreamreelError, InvalidRequest, NotFound
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Generation, State
from dreamreel.core.request import (
    MAX_PROMPT_CHARS,
    MAX_URL_CHARS,
    PUBLIC_MODELS,
    AspectRatio,
    GenerationRequest,
    ImageKeyframe,
    Keyframes,
    ModifyEdit,
    ModifyMode,
    ReframeEdit,
    ReframePlacement,
    Resolution,
)
from dreamreel.core.service import GenerationService

APP_OWNER, APP_ALIAS = "fal-ai", "luma-dream-machine"
SYNC_PREFIX = "/fal-run"
QUEUE_PREFIX = f"/{APP_OWNER}/{APP_ALIAS}"
SYNC_TIMEOUT_S = 1800.0
PRIORITIES = {"normal": 0, "low": -1}

STATUS_WORDS = {
    State.QUEUED: "IN_QUEUE",
    State.RUNNING: "IN_PROGRESS",
    State.COMPLETED: "COMPLETED",
    State.FAILED: "COMPLETED",
    State.CANCELLED: "COMPLETED",
}
"""fal has no failed status: a request that failed or was cancelled is ``COMPLETED`` with an error."""

NOTIFY_ON = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED})
"""fal: one webhook when the request is done, whatever the outcome."""

FalAspect = Literal["16:9", "9:16", "4:3", "3:4", "21:9", "9:21"]


class FalRay2Input(ControlFields):
    """``fal-ai/luma-dream-machine/ray-2`` input (unknown fields are ignored, as fal's apps do)."""

    model_config = ConfigDict(extra="ignore")

    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    aspect_ratio: FalAspect = "16:9"
    loop: StrictBool = False
    resolution: Literal["540p", "720p", "1080p"] = "540p"
    duration: Literal["5s", "9s"] = "5s"

    def keyframes(self) -> Keyframes | None:
        return None

    def to_core(self, model: str, webhook: str | None) -> GenerationRequest:
        return GenerationRequest(
            prompt=self.prompt, model=model, aspect_ratio=self.aspect_ratio, resolution=self.resolution,
            duration_s=5 if self.duration == "5s" else 9, loop=self.loop, keyframes=self.keyframes(),
            callback_url=webhook, **self.controls(),
        )


class FalRay2ImageInput(FalRay2Input):
    """``.../image-to-video``: start and/or end image (http(s) URLs or ``data:`` URIs)."""

    image_url: StrictStr | None = Field(default=None, max_length=64 * 1024 * 1024)
    end_image_url: StrictStr | None = Field(default=None, max_length=64 * 1024 * 1024)

    def keyframes(self) -> Keyframes | None:
        if self.image_url is None and self.end_image_url is None:
            raise InvalidRequest(
                "image_url or end_image_url is required", field="image_url",
                details=[{"loc": ["body", "image_url"], "msg": "image_url or end_image_url is required",
                          "type": "missing"}],
            )
        return Keyframes(
            frame0=ImageKeyframe(url=self.image_url) if self.image_url else None,
            frame1=ImageKeyframe(url=self.end_image_url) if self.end_image_url else None,
        )


class FalEditInput(ControlFields):
    """What ``.../modify`` and ``.../reframe`` share (unknown fields are ignored, as fal's apps do)."""

    model_config = ConfigDict(extra="ignore")

    video_url: StrictStr = Field(min_length=1, max_length=MAX_URL_CHARS)
    """The source: http(s), ``generation:<id>``, ``upload:<id>`` or this server's file URL of a clip."""
    prompt: StrictStr = Field(default="", max_length=MAX_PROMPT_CHARS)
    image_url: StrictStr | None = Field(default=None, max_length=64 * 1024 * 1024)
    """The first frame of the result (http(s), ``data:``, ``upload:<id>``)."""
    resolution: Resolution | None = None
    """Extension: the output resolution; absent: the source's resolution class."""


class FalModifyInput(FalEditInput):
    """``.../ray-2/modify``: the source re-made under the prompt, ``mode`` from ``adhere_1`` (closest to the
    source) to ``reimagine_3`` (freest); the output keeps the source's aspect and length."""

    mode: ModifyMode = ModifyMode.FLEX_1

    def to_core(self, model: str, webhook: str | None) -> GenerationRequest:
        edit = ModifyEdit(source=self.video_url, mode=self.mode, first_frame=self.image_url,
                          resolution=self.resolution)
        return GenerationRequest(edit=edit, prompt=self.prompt, model=model, callback_url=webhook,
                                 **self.controls())


class FalReframeInput(FalEditInput, ReframePlacement):
    """``.../ray-2/reframe``: the source placed in a canvas of ``aspect_ratio`` (``x_start..x_end`` x
    ``y_start..y_end``, else at ``grid_position_x/y``; unset: centred at the largest size that fits) and the
    rest generated; the output keeps the source's length. ``resized_width/height`` (Luma's) are accepted as an
    extension: every dialect's reframe places its source the same way."""

    aspect_ratio: AspectRatio

    def to_core(self, model: str, webhook: str | None) -> GenerationRequest:
        edit = ReframeEdit(source=self.video_url, first_frame=self.image_url, resolution=self.resolution,
                           **self.placement())
        return GenerationRequest(edit=edit, prompt=self.prompt, model=model, aspect_ratio=self.aspect_ratio,
                                 callback_url=webhook, **self.controls())


FalInput = FalRay2Input | FalModifyInput | FalReframeInput

FAL_ENDPOINT_IDS: dict[str, str] = {"ray-2": "ray-2", "ray-flash-2": "ray-2-flash"}
"""Public model name -> fal's endpoint id for it (fal spells the flash model ``ray-2-flash``)."""
if set(FAL_ENDPOINT_IDS) != set(PUBLIC_MODELS):
    raise RuntimeError("every public model needs a fal endpoint id")

SUFFIXES: dict[str, type[FalInput]] = {
    "": FalRay2Input, "/image-to-video": FalRay2ImageInput, "/modify": FalModifyInput, "/reframe": FalReframeInput,
}
"""An endpoint's path after its model's id -> its input schema."""


def endpoints(models: Iterable[str]) -> dict[str, tuple[str, type[FalInput]]]:
    """fal endpoint (the path after ``fal-ai/luma-dream-machine/``) -> (public model, its input schema), for the
    models a server serves. The rule for every name: its endpoint id is the name itself (``my-wan``,
    ``my-wan/image-to-video``, ``my-wan/modify``, ``my-wan/reframe``); the built-in names also keep fal's own
    spelling (``ray-2-flash`` for ``ray-flash-2``)."""
    ids = {model: {model, FAL_ENDPOINT_IDS.get(model, model)} for model in models}
    return {f"{endpoint}{suffix}": (model, schema) for model, names in ids.items() for endpoint in sorted(names)
            for suffix, schema in SUFFIXES.items()}


ENDPOINTS = endpoints(PUBLIC_MODELS)
"""The built-in models' endpoints (what the OpenAPI document lists; a models config adds its names')."""


# --- rendering ---------------------------------------------------------------------------------
def _base(request: Request) -> str:
    """The host this request came to (not the public URL): fal's queue and sync hosts are the client's
    ``FAL_*_RUN_HOST`` values, and the status/result/cancel URLs must lead back to the same one."""
    return str(request.base_url).rstrip("/")


def request_urls(base: str, request_id: str) -> dict[str, str]:
    root = f"{base}{QUEUE_PREFIX}/requests/{request_id}"
    return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


LEVELS = {"INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR", "DEBUG": "DEBUG"}


def result_body(generation: Generation, urls: FileUrls) -> dict[str, Any]:
    info = generation.video_info
    return {"video": {"url": urls.url(generation.assets.video), "content_type": "video/mp4",
                      "file_name": "output.mp4", "file_size": info.size_bytes if info else None},
            "seed": generation.seed}


class FalRequestError(DreamreelError):
    """A request-level failure in fal's terms: an HTTP status plus an ``error_type``."""

    def __init__(self, message: str, *, status_code: int, error_type: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id


def failure(generation: Generation) -> FalRequestError:
    """The error a finished-but-unsuccessful request reports (result GET, webhook, sync run)."""
    if generation.state == State.CANCELLED:
        return FalRequestError("Request was cancelled", status_code=400, error_type="client_cancelled",
                               request_id=generation.id)
    if generation.failure_code is FailureCode.REQUEST_TIMEOUT:
        return FalRequestError("Request timed out", status_code=504, error_type="request_timeout",
                               request_id=generation.id)
    if generation.failure_code is FailureCode.INPUT:  # the client's image or video, not our fault
        if generation.request.edit is not None:  # its source or first frame, named as the client sent them
            return FalRequestError(rename_in_text(generation.failure_reason or "", FAL_FIELDS), status_code=422,
                                   error_type="file_download_error", request_id=generation.id)
        return FalRequestError(generation.failure_reason or "", status_code=422, error_type="image_load_error",
                               request_id=generation.id)
    return FalRequestError(generation.failure_reason or "generation failed", status_code=500,
                           error_type="internal_error", request_id=generation.id)


def status_body(generation: Generation, base: str, service: GenerationService, with_logs: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"status": STATUS_WORDS[generation.state], "request_id": generation.id,
                            **request_urls(base, generation.id)}
    if generation.state == State.QUEUED:
        body["queue_position"] = service.queue_position(generation.id) or 0
        return body
    body["logs"] = [
        {"message": event.message, "level": LEVELS.get(event.level, "INFO"), "source": "USER",
         "timestamp": _iso(event.timestamp)}
        for event in service.events(generation.id)
    ] if with_logs else None
    if generation.state.is_terminal:
        body["metrics"] = {"inference_time": generation.inference_seconds}
        if generation.state != State.COMPLETED:
            error = failure(generation)
            body["error"], body["error_type"] = error.message, error.error_type
    return body


def webhook_payload(generation: Generation, urls: FileUrls) -> dict[str, Any]:
    """fal's webhook body: ``request_id, gateway_request_id, status OK|ERROR, payload, error``."""
    common = {"request_id": generation.id, "gateway_request_id": generation.id}
    if generation.state == State.COMPLETED:
        return {**common, "status": "OK", "payload": result_body(generation, urls), "error": None}
    error = failure(generation)
    return {**common, "status": "ERROR", "payload": {"detail": error.message, "error_type": error.error_type},
            "error": f"Invalid status code: {error.status_code}"}


ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 402: "insufficient_credits", 403: "forbidden",
               404: "not_found", 408: "request_timeout", 409: "conflict", 413: "bad_request", 422: "bad_request",
               429: "rate_limited", 431: "bad_request", 503: "service_unavailable"}
"""HTTP status -> ``error_type`` (and ``X-Fal-Error-Type``) for errors not raised with a fal type of their own."""


def error_response(exc: DreamreelError) -> JSONResponse:
    """fal's shapes: validation -> 422 ``{"detail": [{loc, msg, type}]}``; else ``{"detail", "error_type"}``."""
    if exc.details is not None and exc.status_code == 422:
        return JSONResponse(status_code=422, content={"detail": exc.details})
    if isinstance(exc, FalRequestError):
        error_type, request_id = exc.error_type, exc.request_id
    else:
        error_type = ERROR_TYPES.get(exc.status_code, "internal_error")
        request_id = None
    headers = {"X-Fal-Error-Type": error_type}
    if request_id:
        headers["x-fal-request-id"] = request_id
    if error_type == "request_timeout":
        headers["X-Fal-Request-Timeout-Type"] = "user"
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.message, "error_type": error_type},
                        headers=headers)


# --- routes ------------------------------------------------------------------------------------
queue = APIRouter(tags=["fal"])


def _app_or_404(owner_name: str, alias: str) -> None:
    if (owner_name, alias) != (APP_OWNER, APP_ALIAS):
        raise NotFound(f"application {owner_name}/{alias} not found")


def _submit(endpoint: str, body: bytes, service: GenerationService, owner: str, urls: FileUrls, webhook: str | None,
            priority: str | None, timeout: str | None) -> Generation:
    served = endpoints(service.models)
    if endpoint not in served:
        raise NotFound(f"endpoint {APP_OWNER}/{APP_ALIAS}/{endpoint} not found; this server's models: "
                       f"{', '.join(service.models)}")
    model, schema = served[endpoint]
    if priority is not None and priority not in PRIORITIES:
        raise InvalidRequest(f"X-Fal-Queue-Priority must be one of {sorted(PRIORITIES)}", field="priority")
    start_timeout = None
    if timeout is not None:
        try:
            start_timeout = float(timeout)
        except ValueError:
            raise InvalidRequest("X-Fal-Request-Timeout must be a number of seconds", field="timeout") from None
        if not 0 < start_timeout <= 86400:
            raise InvalidRequest("X-Fal-Request-Timeout must be in (0, 86400] seconds", field="timeout")
    parsed = parse_body(schema, body)
    if webhook is not None and not webhook.lower().startswith(("http://", "https://")):
        raise InvalidRequest("fal_webhook must be an http(s) URL", field="fal_webhook")
    try:
        core = with_own_references(parsed.to_core(model, webhook), urls)
        return service.submit(core, owner=owner, dialect=DIALECT.name,
                              notify_on=DIALECT.notify_on, priority=PRIORITIES.get(priority or "normal", 0),
                              start_timeout_s=start_timeout)
    except InvalidRequest as exc:
        raise _in_fal_fields(exc) from None
    except DreamreelError as exc:  # 404 / 409 on an edit's source: fal's error body, in fal's field names
        raise rename_fields(exc, FAL_FIELDS) from None


FAL_FIELDS = {"keyframes.frame0": "image_url", "keyframes.frame1": "end_image_url", "media.url": "video_url",
              "media": "video_url", "first_frame.url": "image_url", "first_frame": "image_url",
              "resized_width": "x_start"}
"""Core field names -> the fal field the client sent (fal's reframe has no ``resized_width``: its box is the
``x_start..x_end`` pair)."""


def _in_fal_fields(exc: InvalidRequest) -> InvalidRequest:
    """A problem found by the core (a keyframe, an edit's source), renamed to the fal field the client sent."""
    rename_fields(exc, FAL_FIELDS)
    field = exc.field or "body"
    return InvalidRequest(exc.message, field=field,
                          details=[{"loc": ["body", field], "msg": exc.message, "type": "value_error"}])


EndpointParam = Annotated[str, Path(description="The endpoint under fal-ai/luma-dream-machine: the built-in ones "
                                                "listed, and <model>[/image-to-video|/modify|/reframe] for each "
                                                "model a models config adds.",
                                    json_schema_extra={"enum": sorted(ENDPOINTS)})]
AppOwnerParam = Annotated[str, Path(json_schema_extra={"enum": [APP_OWNER]})]
AppAliasParam = Annotated[str, Path(json_schema_extra={"enum": [APP_ALIAS]})]
PriorityHeader = Annotated[str | None, Header(json_schema_extra={"enum": sorted(PRIORITIES)})]
TimeoutHeader = Annotated[str | None, Header(description="Seconds (at most 86400) the request may wait to start.",
                                             json_schema_extra={"pattern": r"^[0-9]{1,5}(\.[0-9]{1,6})?$"})]
BODY_DOC = json_request_body(FalRay2Input, FalRay2ImageInput, FalModifyInput, FalReframeInput)
"""Documented only: ``_submit`` parses the body with the endpoint's model (``ENDPOINTS``)."""


@queue.post(QUEUE_PREFIX + "/{endpoint:path}", response_model=FalQueued, responses=ERRORS, openapi_extra=BODY_DOC)
def submit(
    request: Request, endpoint: EndpointParam, body: Body, service: Service, owner: Owner,
    fal_webhook: str | None = Query(default=None, max_length=MAX_URL_CHARS),
    x_fal_queue_priority: PriorityHeader = None,
    x_fal_request_timeout: TimeoutHeader = None,
) -> dict[str, Any]:
    generation = _submit(endpoint, body, service, owner, file_urls(request), fal_webhook, x_fal_queue_priority,
                         x_fal_request_timeout)
    return {"status": "IN_QUEUE", "request_id": generation.id, "gateway_request_id": generation.id,
            **request_urls(_base(request), generation.id),
            "queue_position": service.queue_position(generation.id) or 0}


@queue.get("/{owner_name}/{alias}/requests/{request_id}/status", response_model=FalQueueStatus,
           responses=STATUS_RESPONSES)
@fast_poll(query={"logs": 8})
async def status(
    request: Request, owner_name: AppOwnerParam, alias: AppAliasParam, request_id: str, service: Service, owner: Owner,
    logs: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    _app_or_404(owner_name, alias)
    with_logs = (logs or "0").lower() in ("1", "true")
    generation, body = await store_read(request, _status, service, request_id, owner, _base(request), with_logs)
    return JSONResponse(status_code=200 if generation.state.is_terminal else 202, content=body)


def _status(service: GenerationService, request_id: str, owner: str, base: str,
            with_logs: bool) -> tuple[Generation, dict[str, Any]]:
    """The generation and its status body: every store read of a status poll, in one trip to the read pool."""
    generation = service.get(request_id, owner=owner)
    return generation, status_body(generation, base, service, with_logs=with_logs)


@queue.get("/{owner_name}/{alias}/requests/{request_id}", response_model=FalVideoResult, responses=RESULT_ERRORS)
async def result(request: Request, owner_name: AppOwnerParam, alias: AppAliasParam, request_id: str,
                 service: Service, owner: Owner) -> JSONResponse:
    _app_or_404(owner_name, alias)
    generation = await run_read(service.get, request_id, owner=owner)
    if not generation.state.is_terminal:
        raise InvalidRequest("Request is still in progress", field="request_id")
    if generation.state != State.COMPLETED:
        raise failure(generation)
    return json_response(result_body(generation, file_urls(request)))


@queue.put("/{owner_name}/{alias}/requests/{request_id}/cancel", status_code=202, response_model=FalCancelRequested,
           responses=CANCEL_RESPONSES)
def cancel(owner_name: AppOwnerParam, alias: AppAliasParam, request_id: str, service: Service,
           owner: Owner) -> JSONResponse:
    _app_or_404(owner_name, alias)
    try:
        generation = service.get(request_id, owner=owner)
    except NotFound:
        return JSONResponse(status_code=404, content={"status": "NOT_FOUND", "detail": "request not found"})
    if generation.state.is_terminal:
        return JSONResponse(status_code=400, content={"status": "ALREADY_COMPLETED"})
    service.cancel(request_id, owner=owner)
    return JSONResponse(status_code=202, content={"status": "CANCELLATION_REQUESTED"})


@queue.post(SYNC_PREFIX + QUEUE_PREFIX + "/{endpoint:path}", response_model=FalVideoResult, responses=RUN_ERRORS,
            openapi_extra=BODY_DOC)
async def run(
    request: Request, endpoint: EndpointParam, body: Body, service: Service, owner: Owner,
    x_fal_request_timeout: TimeoutHeader = None,
) -> dict[str, Any]:
    """The sync host: submit, wait for the outcome, answer with the result body (or its error)."""
    generation = await run_in_threadpool(_submit, endpoint, body, service, owner, file_urls(request), None, None,
                                         x_fal_request_timeout)
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while not generation.state.is_terminal:
        if await request.is_disconnected():
            await run_in_threadpool(service.cancel, generation.id, owner=owner)
            raise ClientDisconnect()  # nobody to answer; the app's handler logs nothing for it
        if time.monotonic() > deadline:
            raise FalRequestError("Request timed out", status_code=504, error_type="request_timeout",
                                  request_id=generation.id)
        await asyncio.sleep(0.1)
        generation = await run_in_threadpool(service.get, generation.id, owner=owner)
    if generation.state != State.COMPLETED:
        raise failure(generation)
    return result_body(generation, file_urls(request))


def render_callback(generation: Generation, urls: FileUrls, signer: WebhookSigner) -> Notification:
    """fal: its webhook payload, signed over request id, user id, timestamp and body hash."""
    body = json_body(webhook_payload(generation, urls))
    timestamp = str(int(time.time()))
    return body, {
        "content-type": "application/json",
        "X-Fal-Webhook-Request-Id": generation.id,
        "X-Fal-Webhook-User-Id": generation.owner,
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": signer.sign(generation.id, generation.owner, timestamp, body),
    }


DIALECT = Dialect(name="fal", router=queue, path_prefixes=(QUEUE_PREFIX + "/", SYNC_PREFIX + "/"),
                  status_words=STATUS_WORDS, render_error=error_response, notify_on=NOTIFY_ON,
                  render_callback=render_callback)
