"""AI/ML API v2 video objects exactly as ``dialects/aiml.py`` renders them: its routes' response models.

Fields follow the render functions' key order, and unknown keys are refused (``api/schema.ResponseModel``), so
the OpenAPI document cannot drift from the wire.
"""

from __future__ import annotations

from typing import Literal

from dreamreel.api.schema import ResponseModel, error_responses

AimlStatus = Literal["queued", "generating", "completed", "error"]


class AimlCreated(ResponseModel):
    """The answer to ``POST /v2/video/generations``: poll with ``GET ...?generation_id=<id>``."""

    id: str
    """``<uuid>:luma/<model>``; the uuid alone works too, as do ids from the other dialects."""
    status: AimlStatus


class AimlVideo(ResponseModel):
    url: str
    """A signed, expiring file URL."""
    duration: float | None


class AimlFailure(ResponseModel):
    name: Literal["GenerationError", "GenerationCancelled"]
    message: str


class AimlUsage(ResponseModel):
    credits_used: int | float
    tokens_used: int | float


class AimlMeta(ResponseModel):
    usage: AimlUsage


class AimlGeneration(ResponseModel):
    id: str
    status: AimlStatus
    video: AimlVideo | None
    """Once completed."""
    duration: float | None
    error: AimlFailure | None
    """Once failed or cancelled."""
    meta: AimlMeta | None
    """Once completed: what the generation cost."""
    seed: int
    """Extension: the noise seed the generation used; send it back as ``seed`` to make the same clip again."""


class AimlErrorBody(ResponseModel):
    """The gateway's NestJS-style error body."""

    statusCode: int
    message: str
    error: str
    """The status's reason phrase."""


ERRORS = error_responses(AimlErrorBody)
"""The AI/ML error body on every route."""
