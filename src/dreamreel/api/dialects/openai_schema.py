"""OpenAI ``/v1`` objects exactly as ``dialects/openai.py`` renders them, and the request bodies it parses.

Response models follow the ``openai`` SDK's types (``openai/types/video*.py``, ``model.py``) field for field,
in the render functions' key order; unknown keys are refused (``api/schema.ResponseModel``), so the OpenAPI
document cannot drift from the wire. The request models are what the routes validate after turning a
multipart form (the SDK's ``input_reference[image_url]``, ``video[id]``) into the same nested shape a JSON
body has.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from dreamreel.api.extensions import ControlFields
from dreamreel.api.schema import ResponseModel, error_responses
from dreamreel.core.request import MAX_PROMPT_CHARS, MAX_SEED

MAX_ID_CHARS = 200
MAX_URL_CHARS = 64 * 1024 * 1024
"""An ``image_url`` may be a ``data:`` URI: as long as the body cap allows (checked where images are read)."""

DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = "4"
"""OpenAI's defaults (``POST /v1/videos`` without ``size``/``seconds``): portrait 720x1280, 4 s."""

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]


# --- request bodies --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageReference(_Strict):
    """``input_reference`` as a reference: exactly one of ``image_url`` (http(s) or ``data:``; ``upload:<id>``
    too) and ``file_id`` (an upload of this server: ``<id>`` or ``upload:<id>``)."""

    image_url: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_URL_CHARS)
    file_id: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)


class VideoReference(_Strict):
    """``video: {id}``: a completed video (a generation of any dialect) of the caller's; for an edit also
    ``upload:<id>``, a video the caller posted to ``POST /uploads`` (an extension)."""

    id: StrictStr = Field(min_length=1, max_length=MAX_ID_CHARS)


def _seconds_text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError('seconds must be a whole number of seconds as a string, such as "4"')


Seconds = Annotated[str, BeforeValidator(_seconds_text, json_schema_input_type=str | int)]
"""OpenAI sends ``seconds`` as a string (``"4"``); a JSON integer is taken too. Checked to be 1..20 whole
(``openai.parse_seconds``), so a bad value is named ``seconds`` whatever its type."""


def _seed_text(value: Any) -> Any:
    """A multipart form sends every field as text: ``"42"`` is the seed 42 there."""
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 10 else value


class _Controls(_Strict, ControlFields):
    """The extension fields (``api/extensions.py``); ``seed`` may be form text."""

    seed: Annotated[int | None, BeforeValidator(_seed_text, json_schema_input_type=int | str | None)] = Field(
        default=None, ge=0, le=MAX_SEED)
    """Extension: the noise seed (the response's ``seed`` says which one a video used)."""


class VideoCreate(_Controls):
    """``POST /v1/videos``, as JSON or as the SDK's multipart form (an uploaded ``input_reference`` file is a
    form part; it is not shown here, see the multipart schema)."""

    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: StrictStr | None = Field(default=None, max_length=MAX_ID_CHARS)
    """A server model (``GET /v1/models``) or ``sora-2``/``sora-2-pro`` (the default model); default: the
    default model."""
    seconds: Seconds = DEFAULT_SECONDS
    size: StrictStr = Field(default=DEFAULT_SIZE, max_length=32)
    """``WIDTHxHEIGHT``."""
    input_reference: ImageReference | None = None


class VideoExtend(_Controls):
    """``POST /v1/videos/extensions``: ``seconds`` of new footage after ``video``'s last frame."""

    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    seconds: Seconds
    video: VideoReference


class VideoEdit(_Controls):
    """``POST /v1/videos/edits``: a modify (``adhere_3``) of ``video`` under ``prompt``. ``video`` is a
    reference here; in the multipart form it may instead be a video file (MP4, MOV, WebM), not shown here (see
    the multipart schema). One of the two is required."""

    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    video: VideoReference | None = None


class VideoRemix(_Controls):
    """``POST /v1/videos/{id}/remix``: a modify (``flex_2``) of the caller's completed video under a new
    ``prompt``."""

    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)


# --- responses -------------------------------------------------------------------------------------


class VideoError(ResponseModel):
    code: str
    """The failure code (``input``, ``internal``, ``out_of_memory``, ``time_limit``, ``cancelled``, ...)."""
    message: str


class VideoOut(ResponseModel):
    """The SDK's ``Video``: returned by create, retrieve, list and extend."""

    id: str
    """The generation id every dialect uses."""
    object: Literal["video"]
    created_at: int
    completed_at: int | None
    """When it finished (completed or failed)."""
    expires_at: int | None
    """When retention (``retention_days``) removes its files; null when nothing expires."""
    model: str
    """The server model that makes it (an alias such as ``sora-2`` reads as the model it stands for)."""
    progress: int
    """0..100 from the denoising steps done; 100 once completed."""
    prompt: str | None
    remixed_from_video_id: str | None
    """The video this one was made from: a remix's (or an edit's by ``video.id``, or a Luma/fal modify's of a
    generation) source; null otherwise."""
    seconds: str
    """Whole seconds; for an extension the stitched total (the source's clip and the new footage); for a remix
    or edit the source's length (a source behind a URL: the longest accepted, until the file is read)."""
    size: str
    """``WIDTHxHEIGHT`` delivered (a remix or edit: the source's aspect at its resolution class)."""
    status: VideoStatus
    error: VideoError | None
    seed: int
    """Extension: the noise seed the video used; send it back as ``seed`` to make the same video again."""


class VideoPage(ResponseModel):
    """``GET /v1/videos``: the SDK's ``ConversationCursorPage`` (it pages on with ``after=last_id``)."""

    object: Literal["list"]
    data: list[VideoOut]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(ResponseModel):
    id: str
    object: Literal["video.deleted"]
    deleted: bool


class ModelOut(ResponseModel):
    id: str
    object: Literal["model"]
    created: int
    """When this server started (the models are whatever it serves now)."""
    owned_by: str


class ModelList(ResponseModel):
    object: Literal["list"]
    data: list[ModelOut]


class ErrorDetail(ResponseModel):
    message: str
    type: str
    """``invalid_request_error`` (400, 404, 409, 413), ``authentication_error`` (401), ``permission_error``
    (403), ``insufficient_quota`` (402), ``rate_limit_error`` (429), ``server_error`` (5xx)."""
    param: str | None
    """The request field at fault (``size``, ``seconds``, ``input_reference``, ``video``, ...), when one is."""
    code: str | None


class OpenAIError(ResponseModel):
    """OpenAI's error envelope; the SDK raises the class its status maps to (``BadRequestError`` for 400,
    ``NotFoundError`` for 404, ...) with ``body`` = the inner object."""

    error: ErrorDetail


ERRORS = error_responses(OpenAIError)
"""OpenAI's error envelope on every route."""
