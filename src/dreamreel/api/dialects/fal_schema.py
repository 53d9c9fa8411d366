"""fal's queue and sync bodies exactly as ``dialects/fal.py`` writes them: its routes' response models.

``fal-client`` reads these. The queue status is a ``TypedDict``: its keys depend on the state (``queue_position``
while queued; ``logs`` once started; ``metrics``, and ``error``/``error_type`` for a failure, once done), and a
key that is absent is not the same as a ``null`` one. Unknown keys are refused everywhere
(``api/schema.ResponseModel``), so the OpenAPI document cannot drift from the wire.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from dreamreel.api.dialects.aiml_schema import AimlErrorBody
from dreamreel.api.schema import DetailError, ResponseModel, error_responses

FalStatusWord = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
"""fal has no failed status: a failed or cancelled request is ``COMPLETED`` with an error."""


class FalQueued(ResponseModel):
    """The answer to a queue submission."""

    status: Literal["IN_QUEUE"]
    request_id: str
    gateway_request_id: str
    response_url: str
    status_url: str
    cancel_url: str
    queue_position: int


class FalLogLine(ResponseModel):
    message: str
    level: Literal["INFO", "WARN", "ERROR", "DEBUG"]
    source: Literal["USER"]
    timestamp: str


class FalMetrics(ResponseModel):
    inference_time: float | None
    """Seconds from start to finish; null when the request never started."""


@with_config(ConfigDict(extra="forbid"))
class FalQueueStatus(TypedDict):
    """``GET .../requests/{id}/status``: 202 while queued or running, 200 once done."""

    status: FalStatusWord
    request_id: str
    response_url: str
    status_url: str
    cancel_url: str
    queue_position: NotRequired[int]
    """Only while ``IN_QUEUE``."""
    logs: NotRequired[list[FalLogLine] | None]
    """Once started; null unless asked for with ``?logs=1``."""
    metrics: NotRequired[FalMetrics]
    """Once ``COMPLETED``."""
    error: NotRequired[str]
    """Once ``COMPLETED`` unsuccessfully: what went wrong."""
    error_type: NotRequired[str]
    """Once ``COMPLETED`` unsuccessfully: ``client_cancelled``, ``request_timeout``, ``image_load_error``, ..."""


class FalFile(ResponseModel):
    url: str
    """A signed, expiring file URL."""
    content_type: str
    file_name: str
    file_size: int | None


class FalVideoResult(ResponseModel):
    """The result of a completed request (queue result GET, sync run, a webhook's ``payload``)."""

    video: FalFile
    seed: int
    """The noise seed the request used (fal's apps report theirs the same way); send it back as ``seed``."""


class FalCancelRequested(ResponseModel):
    status: Literal["CANCELLATION_REQUESTED"]


class FalAlreadyCompleted(ResponseModel):
    status: Literal["ALREADY_COMPLETED"]


class FalCancelNotFound(ResponseModel):
    status: Literal["NOT_FOUND"]
    detail: str


class FalError(ResponseModel):
    """fal's error body (``X-Fal-Error-Type`` repeats ``error_type``)."""

    detail: str
    error_type: str


class FalValidationIssue(ResponseModel):
    loc: list[str | int]
    msg: str
    type: str


class FalValidationError(ResponseModel):
    """A 422 on a body field: FastAPI's ``{"detail": [{loc, msg, type}]}``, as fal's apps answer."""

    detail: list[FalValidationIssue]


FalErrorBody = FalError | FalValidationError

ERRORS = error_responses(FalErrorBody)
"""Errors on the fal-only paths (``/fal-ai/luma-dream-machine/...``, ``/fal-run/...``)."""

RUN_ERRORS = error_responses(FalErrorBody, 500, 504)
"""The sync run also answers a failed request's own error: 504 ``request_timeout``, 500 ``internal_error``."""

GENERIC_ERRORS = error_responses(FalErrorBody | DetailError | AimlErrorBody)
"""Status, result and cancel are routed on ``/{owner}/{alias}/requests/...`` for any first two segments (as fal
does); a request under another dialect's prefix gets that dialect's error shape (``app.render_error``)."""

RESULT_ERRORS = error_responses(FalErrorBody | DetailError | AimlErrorBody, 500, 504)

CANCEL_RESPONSES = {
    **GENERIC_ERRORS,
    400: {"model": FalAlreadyCompleted | FalErrorBody, "description": "The request had already completed."},
    404: {"model": FalCancelNotFound | FalErrorBody | DetailError | AimlErrorBody,
          "description": "No such request (or not the caller's)."},
}

STATUS_RESPONSES = {**GENERIC_ERRORS, 202: {"model": FalQueueStatus, "description": "Queued or in progress."}}
