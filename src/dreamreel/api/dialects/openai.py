"""OpenAI's video API (what the ``openai`` SDK's ``client.videos`` calls), mounted at ``/v1``.

A video here is a generation like any other: its id works in every dialect, and a generation made through
Luma, fal or AI/ML is a video here. ``size`` is kept exactly (``GenerationRequest.size``; aspect and resolution
are its nearest Ray format, what capability checks and the other dialects' labels go by) and ``seconds`` is any
whole length from 1 to 20. An extension (``POST /v1/videos/extensions``) is dreamreel's extend: ``frame0`` is
the source generation, and the new video contains the source's clip followed by ``seconds`` of new footage
(its ``seconds`` reads the stitched total, as OpenAI's does).

Remix and edits are dreamreel's modify (video-to-video, ``core/request.ModifyEdit``), with a strength chosen
for what each route promises: a **remix** (``POST /v1/videos/{id}/remix``) re-makes a video under a new prompt,
so it is ``flex_2`` (the middle of Luma's nine strengths: the source's layout and motion, the prompt's look);
an **edit** (``POST /v1/videos/edits``) changes what the prompt names in a given video and should keep the
rest, so it is ``adhere_3`` (the freest of the modes that stay close to the source). Both keep the source's
aspect ratio and length at its resolution class; the source is a completed video of the caller (``video.id``;
``upload:<id>`` of an uploaded video too) or, for an edit, a video file in the multipart form (kept as one
of the caller's uploads). A remix's ``remixed_from_video_id`` (and an edit's of a video by id) names the source.

Creating requests come as the SDK's multipart forms (``api/forms.py``) or as JSON, validated by the same
models (``openai_schema.py``). Errors are OpenAI's envelope ``{"error": {"message", "type", "param",
"code"}}``; a refused value (422 elsewhere in dreamreel) is OpenAI's 400, so the SDK raises
``BadRequestError``.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ValidationError

from dreamreel.api.deps import Body, Owner, Service
from dreamreel.api.dialects.base import Dialect
from dreamreel.api.dialects.openai_schema import (
    ERRORS,
    ImageReference,
    ModelList,
    ModelOut,
    VideoCreate,
    VideoDeleted,
    VideoEdit,
    VideoExtend,
    VideoOut,
    VideoPage,
    VideoRemix,
)
from dreamreel.api.edits import rename_fields, rename_in_text
from dreamreel.api.errors import describe_validation_error, parse_body
from dreamreel.api.fast_polls import fast_poll
from dreamreel.api.forms import FilePart, nest, parse_multipart
from dreamreel.api.reads import PooledFileResponse, file_stat, json_response, run_read, store_read
from dreamreel.api.schema import inline_defs
from dreamreel.api.uploads import save_image, save_video
from dreamreel.core.conditioning import UPLOAD_SCHEME
from dreamreel.core.edits import GENERATION_SCHEME
from dreamreel.core.errors import Conflict, DreamreelError, InvalidRequest, NotFound, NotSupported
from dreamreel.core.generation import Generation, State
from dreamreel.core.request import (
    DEFAULT_MODEL,
    MAX_DURATION_S,
    SPEEDS,
    GenerationKeyframe,
    GenerationRequest,
    ImageKeyframe,
    Keyframes,
    ModifyEdit,
    ModifyMode,
    nearest_format,
)
from dreamreel.core.service import MAX_PAGE, GenerationService
from dreamreel.media.spritesheet import write_spritesheet

PREFIX = "/v1"
STARTED_AT = int(time.time())

STATUS_WORDS = {
    State.QUEUED: "queued",
    State.RUNNING: "in_progress",
    State.COMPLETED: "completed",
    State.FAILED: "failed",
    State.CANCELLED: "failed",
}

ALIASES = {name: DEFAULT_MODEL for name in (
    "sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")}
"""OpenAI's model names, accepted as the default model so code written for OpenAI runs unchanged."""

_SIZE = re.compile(r"^([0-9]{1,5})x([0-9]{1,5})$")
_SECONDS = re.compile(r"^[0-9]{1,3}$")

CORE_PARAMS = {"duration_s": "seconds", "size": "size", "aspect_ratio": "size", "resolution": "size",
               "prompt": "prompt", "model": "model"}
"""Core request fields -> the OpenAI parameter a caller set them with."""

TYPES = {401: "authentication_error", 402: "insufficient_quota", 403: "permission_error", 429: "rate_limit_error"}
CODES = {401: "invalid_api_key", 402: "insufficient_quota", 404: "not_found", 409: "conflict",
         413: "payload_too_large", 429: "rate_limit_exceeded", 503: "service_unavailable"}


REMIX_MODE = ModifyMode.FLEX_2
"""A remix re-makes the video under a new prompt: the source's layout and motion, the prompt's look."""
EDIT_MODE = ModifyMode.ADHERE_3
"""An edit changes what its prompt names and keeps the rest: the freest mode that still adheres to the source."""
SOURCE_NAMES = {"media.url": "video", "media": "video"}
"""The service's names for an edit's source (in its errors and failure reasons) -> OpenAI's parameter."""
EDIT_PARAMS = {**SOURCE_NAMES, "edit": "video"}


# --- parsing ---------------------------------------------------------------------------------------


def read_form(request: Request, body: bytes, model: type[BaseModel],
              file_field: str | None) -> tuple[Any, FilePart | None]:
    """The body as ``model`` (a multipart form or JSON), and the file uploaded as ``file_field`` if any."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return parse_body(model, body), None
    fields = parse_multipart(body, content_type)
    files = [(name, value) for name, value in fields if isinstance(value, FilePart)]
    if any(name != file_field for name, _ in files):
        name = next(name for name, _ in files if name != file_field)
        raise InvalidRequest(f"Invalid request: {name}: " + (f"only {file_field} may be a file" if file_field
                                                              else "no file is taken here"), field=name)
    data = nest([(name, value) for name, value in fields if not isinstance(value, FilePart)])
    if files and file_field is not None and file_field in data:
        raise InvalidRequest(f"Invalid request: {file_field}: give a file or a reference, not both",
                             field=file_field)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None
    return parsed, files[0][1] if files else None


def parse_size(size: str) -> tuple[int, int]:
    match = _SIZE.match(size)
    if match is None or not int(match.group(1)) or not int(match.group(2)):
        raise InvalidRequest(f"Invalid request: size: {size[:40]!r} is not WIDTHxHEIGHT (e.g. 1280x720)", field="size")
    return int(match.group(1)), int(match.group(2))


def parse_seconds(seconds: str) -> int:
    value = int(seconds) if _SECONDS.match(seconds) else None
    if value is None or not 1 <= value <= MAX_DURATION_S:
        raise InvalidRequest(f"Invalid request: seconds: {str(seconds)[:20]!r} is not a whole number of seconds "
                             f"from 1 to {MAX_DURATION_S}", field="seconds")
    return value


def resolve_model(name: str | None, served: tuple[str, ...]) -> str:
    """A served name as is; an OpenAI alias (``sora-2``) as the default model; unset: the default model."""
    if name is None:
        return DEFAULT_MODEL
    if name in served:
        return name
    if name in ALIASES:
        return ALIASES[name]
    known = ", ".join([*served, *ALIASES])
    raise InvalidRequest(f"Invalid request: model: unknown model {name[:60]!r}; known: {known}", field="model")


def core_request(**fields: Any) -> GenerationRequest:
    """A :class:`GenerationRequest`, its refusals named by the OpenAI parameter (``duration_s`` -> ``seconds``)."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        param = CORE_PARAMS.get(field, field)
        raise InvalidRequest(f"Invalid request: {param}: {error['msg']}", field=param) from None


async def submit(service: GenerationService, request: GenerationRequest, owner: str,
                 params: dict[str, str]) -> Generation:
    """Submit; an error about a core field (``keyframes.frame0``, ``duration_s``) names the OpenAI parameter
    (``params`` for this route's keyframes, else :data:`CORE_PARAMS`). An edit's source (``media.url``) is
    renamed in the message too, since OpenAI's caller never wrote ``media``."""
    try:
        return await run_in_threadpool(service.submit, request, owner=owner, dialect=DIALECT.name)
    except DreamreelError as exc:
        rename_fields(exc, {name: param for name, param in params.items() if name.startswith("media")})
        if exc.field is not None:
            exc.field = (params.get(exc.field) or params.get(exc.field.split(".")[0])
                         or CORE_PARAMS.get(exc.field) or exc.field)
        raise


# --- rendering -------------------------------------------------------------------------------------


def seconds_of(generation: Generation, service: GenerationService) -> int:
    """Whole seconds: the delivered file's, else what was asked, its source clips included (an extension)."""
    if generation.video_info is not None:
        return round(generation.video_info.duration_s)
    total = float(generation.request.duration_s)
    keyframes = generation.request.keyframes
    for keyframe in (keyframes.frame0, keyframes.frame1) if keyframes else ():
        if isinstance(keyframe, GenerationKeyframe):
            try:
                source = service.get(keyframe.id, owner=generation.owner)
            except NotFound:
                continue
            total += source.video_info.duration_s if source.video_info else 0
    return round(total)


def remixed_from(request: GenerationRequest) -> str | None:
    """The video a modify was made from (a remix, an edit of a video by id, a Luma/fal modify of a generation);
    None for anything else, and for a modify of a URL or an uploaded file."""
    edit = request.edit
    if isinstance(edit, ModifyEdit) and edit.source.startswith(GENERATION_SCHEME):
        return edit.source[len(GENERATION_SCHEME):]
    return None


def render_video(generation: Generation, service: GenerationService, retention_days: float | None) -> dict[str, Any]:
    """The SDK's ``Video`` object."""
    done = generation.state is State.COMPLETED
    progress = 100 if done else (min(99, 100 * generation.progress_step // generation.progress_total)
                                 if generation.progress_total else 0)
    finished = int(generation.finished_at) if generation.finished_at and generation.state.is_terminal else None
    info = generation.video_info
    width, height = (info.width, info.height) if info else generation.request.output_size
    error = None
    if generation.state in (State.FAILED, State.CANCELLED):
        code = generation.failure_code.value if generation.failure_code else generation.state.value
        message = generation.failure_reason or generation.state.value
        if generation.request.edit is not None:  # an edit's source is OpenAI's ``video``
            message = rename_in_text(message, SOURCE_NAMES)
        error = {"code": code, "message": message}
    return {
        "id": generation.id,
        "object": "video",
        "created_at": int(generation.created_at),
        "completed_at": finished,
        "expires_at": int(finished + retention_days * 86400) if finished and retention_days else None,
        "model": generation.model,
        "progress": progress,
        "prompt": generation.request.prompt,
        "remixed_from_video_id": remixed_from(generation.request),
        "seconds": str(seconds_of(generation, service)),
        "size": f"{width}x{height}",
        "status": STATUS_WORDS[generation.state],
        "error": error,
        "seed": generation.seed,
    }


def _render(request: Request, generation: Generation, service: GenerationService) -> dict[str, Any]:
    return render_video(generation, service, request.app.state.settings.retention_days)


# --- routes ----------------------------------------------------------------------------------------

router = APIRouter(prefix=PREFIX, tags=["openai"])


def _form_schema(properties: dict[str, dict], required: list[str]) -> dict[str, Any]:
    """A multipart form's fields, with the extension fields every create body takes (``loras`` only in JSON:
    a form's fields are text, and an adapter list is no flat field)."""
    extensions = {"seed": {**_TEXT, "pattern": "^[0-9]{1,10}$"}, "negative_prompt": _TEXT,
                  "speed": {**_TEXT, "enum": list(SPEEDS)}}
    return {"type": "object", "properties": {**properties, **extensions}, "required": required}


_TEXT = {"type": "string"}
_FILE = {"type": "string", "format": "binary"}


def _request_body(model: type[BaseModel], form: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra``: the JSON body (``model``) or the SDK's multipart form (``form``)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": inline_defs(model.model_json_schema())},
        "multipart/form-data": {"schema": form},
    }}}


CREATE_FORM = _form_schema({
    "prompt": _TEXT, "model": _TEXT, "seconds": _TEXT, "size": _TEXT,
    "input_reference": {**_FILE, "description": "An image file (PNG, JPEG, WEBP, GIF, BMP): the first frame."},
    "input_reference[image_url]": _TEXT, "input_reference[file_id]": _TEXT,
}, ["prompt"])
EXTEND_FORM = _form_schema({
    "prompt": _TEXT, "seconds": _TEXT, "video[id]": _TEXT,
    "video": {**_FILE, "description": "Refused: only video[id] of a completed video can be extended yet."},
}, ["prompt", "seconds"])
EDIT_FORM = _form_schema({
    "prompt": _TEXT, "video[id]": _TEXT,
    "video": {**_FILE, "description": "A video file (MP4, MOV or WebM) to edit, instead of video[id]."},
}, ["prompt"])


@router.post("/videos", response_model=VideoOut, responses=ERRORS,
             openapi_extra=_request_body(VideoCreate, CREATE_FORM))
async def create_video(request: Request, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue a video: text-to-video, or image-to-video with ``input_reference`` (a file, an ``image_url`` or
    the ``file_id`` of an upload of this server) as its first frame."""
    parsed, image_file = read_form(request, body, VideoCreate, "input_reference")
    width, height = parse_size(parsed.size)
    aspect_ratio, resolution = nearest_format(width, height)
    core = core_request(prompt=parsed.prompt, model=resolve_model(parsed.model, service.models), size=(width, height),
                        **parsed.controls(),
                        aspect_ratio=aspect_ratio, resolution=resolution, duration_s=parse_seconds(parsed.seconds))
    url = reference_url(parsed.input_reference)
    if image_file is not None:  # kept as one of the key's uploads, checked as POST /uploads checks
        upload_id, _, _ = await save_image(request, owner, image_file.data, request.app.state.settings,
                                           field="input_reference")
        url = UPLOAD_SCHEME + upload_id
    if url is not None:
        core = core.model_copy(update={"keyframes": Keyframes(frame0=ImageKeyframe(url=url))})
    try:
        generation = await submit(service, core, owner, {"keyframes": "input_reference"})
    except DreamreelError:
        if image_file is not None:  # refused (credits, queue limit, capability): the upload is not left behind
            await run_in_threadpool(request.app.state.files.delete_upload, owner, url.removeprefix(UPLOAD_SCHEME))
        raise
    return _render(request, generation, service)


def reference_url(reference: ImageReference | None) -> str | None:
    """The keyframe URL of ``{image_url}`` or ``{file_id}`` (an upload: ``upload:<id>``)."""
    if reference is None:
        return None
    if (reference.image_url is None) == (reference.file_id is None):
        raise InvalidRequest("Invalid request: input_reference: give exactly one of image_url and file_id",
                             field="input_reference")
    if reference.image_url is not None:
        return reference.image_url
    file_id = reference.file_id or ""
    return file_id if file_id.startswith(UPLOAD_SCHEME) else UPLOAD_SCHEME + file_id


@router.post("/videos/extensions", response_model=VideoOut, responses=ERRORS,
             openapi_extra=_request_body(VideoExtend, EXTEND_FORM))
async def extend_video(request: Request, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue ``seconds`` of new footage after a completed video's last frame; the new video is the source's
    clip followed by the new footage, at the source's size and model."""
    parsed: VideoExtend = _refuse_video_file(*read_form(request, body, VideoExtend, "video"))
    seconds = parse_seconds(parsed.seconds)
    source = _source(service, parsed.video.id, owner)
    if source.state is not State.COMPLETED or source.assets.video is None or source.video_info is None:
        raise Conflict(f"video {source.id} is {STATUS_WORDS[source.state]}; only a completed video can be extended",
                       field="video")
    wanted = source.request
    core = core_request(prompt=parsed.prompt, model=wanted.model, size=wanted.size, aspect_ratio=wanted.aspect_ratio,
                        **parsed.controls(),
                        resolution=wanted.resolution, duration_s=seconds,
                        keyframes=Keyframes(frame0=GenerationKeyframe(id=source.id)))
    generation = await submit(service, core, owner, {"keyframes.frame0": "video", "keyframes": "seconds"})
    return _render(request, generation, service)


@router.post("/videos/edits", response_model=VideoOut, responses=ERRORS,
             openapi_extra=_request_body(VideoEdit, EDIT_FORM))
async def edit_video(request: Request, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue an edit: a modify of the source under ``prompt`` in mode ``adhere_3`` (the prompt's change, the
    rest kept close to the source). The source is ``video: {id}`` (a completed video of the caller: 404 if not
    its, 409 if not completed; ``upload:<id>`` of an uploaded video too) or a video file (MP4, MOV, WebM) in the
    multipart form, kept as one of the caller's uploads. The new video has the source's aspect ratio and length
    at its resolution class, on the source video's model (a file: the default model)."""
    parsed, video_file = read_form(request, body, VideoEdit, "video")
    if video_file is not None:  # kept as one of the key's uploads, checked as POST /uploads checks a video
        upload_id, _ = await save_video(request, owner, video_file.data, request.app.state.settings, field="video")
        source, model = UPLOAD_SCHEME + upload_id, DEFAULT_MODEL
    elif parsed.video is not None:
        source, model = await run_in_threadpool(_edit_source, service, parsed.video.id, owner)
    else:
        raise InvalidRequest("Invalid request: video: field required (video[id], or a video file)", field="video")
    try:
        core = core_request(prompt=parsed.prompt, model=model, edit=ModifyEdit(source=source, mode=EDIT_MODE),
                            **parsed.controls())
        generation = await submit(service, core, owner, EDIT_PARAMS)
    except DreamreelError:
        if video_file is not None:  # refused (too long, credits, queue limit): the upload is not left behind
            await run_in_threadpool(request.app.state.files.delete_upload, owner, source.removeprefix(UPLOAD_SCHEME))
        raise
    return _render(request, generation, service)


def _edit_source(service: GenerationService, video_id: str, owner: str) -> tuple[str, str]:
    """``(source reference, model)`` of ``video.id``: an upload (``upload:<id>``, the default model) or a video
    of the caller's (``generation:<id>``, its model; 404 when it is not the caller's)."""
    if video_id.startswith(UPLOAD_SCHEME):
        return video_id, DEFAULT_MODEL
    source = _source(service, video_id.removeprefix(GENERATION_SCHEME), owner)
    return GENERATION_SCHEME + source.id, source.model


@router.get("/videos", response_model=VideoPage, responses=ERRORS)
async def list_videos(
    request: Request, service: Service, owner: Owner,
    after: str | None = Query(default=None, min_length=1, max_length=200,
                              description="The id of the last video of the previous page."),
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = Query(default="desc", description="By creation time."),
) -> dict[str, Any]:
    """The caller's videos (every generation it made, in any dialect), ``limit`` at a time after ``after``."""
    retention_days = request.app.state.settings.retention_days
    data, has_more = await run_read(_rendered_page, service, owner, after, limit, order, retention_days)
    return json_response({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                          "last_id": data[-1]["id"] if data else None, "has_more": has_more})


def _rendered_page(service: GenerationService, owner: str, after: str | None, limit: int, order: str,
                   retention_days: float | None) -> tuple[list[dict[str, Any]], bool]:
    """A page rendered, in the read pool: rendering may read the store too (``seconds_of``)."""
    page, has_more = _page(service, owner, after, limit, order)
    return [render_video(generation, service, retention_days) for generation in page], has_more


@router.get("/videos/{video_id}", response_model=VideoOut, responses=ERRORS)
@fast_poll()
async def retrieve_video(request: Request, video_id: str, service: Service, owner: Owner) -> JSONResponse:
    return json_response(await store_read(request, _retrieve, service, video_id, owner,
                                         request.app.state.settings.retention_days))


def _retrieve(service: GenerationService, video_id: str, owner: str, retention_days: float | None) -> dict[str, Any]:
    """The caller's video rendered, in the read pool (rendering may read the store: ``seconds_of``)."""
    return render_video(_source(service, video_id, owner, field="video_id"), service, retention_days)


@router.delete("/videos/{video_id}", response_model=VideoDeleted, responses=ERRORS)
def delete_video(video_id: str, service: Service, owner: Owner) -> dict[str, Any]:
    """Delete a video (a running one is cancelled first) and its files."""
    generation = _source(service, video_id, owner, field="video_id")
    service.delete(generation.id, owner=owner)
    return {"id": generation.id, "object": "video.deleted", "deleted": True}


CONTENT_RESPONSES = {
    **ERRORS,
    200: {"description": "The MP4 (`video`), its first frame as a JPEG (`thumbnail`), or a JPEG sprite sheet "
                         "(`spritesheet`: one tile per second, 5 to a row, 160 px wide; see the README).",
          "content": {"video/mp4": {"schema": _FILE}, "image/jpeg": {"schema": _FILE}}},
}


@router.get("/videos/{video_id}/content", response_class=FileResponse, responses=CONTENT_RESPONSES)
async def download_content(
    request: Request, video_id: str, service: Service, owner: Owner,
    variant: Literal["video", "thumbnail", "spritesheet"] = Query(default="video"),
) -> FileResponse:
    """The completed video's bytes (409 while it is not completed), served to its owner only."""
    generation = await run_read(_source, service, video_id, owner, "video_id")
    if generation.state is not State.COMPLETED:
        raise Conflict(f"video {generation.id} is {STATUS_WORDS[generation.state]}; its content is available once "
                       "completed", field="video_id")
    files = request.app.state.files
    video = await run_read(files.path_for, generation.assets.video) if generation.assets.video else None
    if variant == "thumbnail":
        path = await run_read(files.path_for, generation.assets.image) if generation.assets.image else None
    elif variant == "spritesheet" and video is not None:
        path = video.with_name("spritesheet.jpg")
        if not await run_read(path.is_file):
            try:
                await run_in_threadpool(write_spritesheet, video, path)
            except FileNotFoundError:  # deleted meanwhile
                raise NotFound(f"video {generation.id} not found", field="video_id") from None
    else:
        path = video
    stat = await run_read(file_stat, path) if path is not None else None
    if path is None or stat is None:
        raise NotFound(f"video {generation.id} has no {variant}", field="variant")
    media_type = "video/mp4" if path.suffix == ".mp4" else "image/jpeg"
    return PooledFileResponse(path, media_type=media_type, headers={"cache-control": "private, no-store"},
                              stat_result=stat)


@router.post("/videos/{video_id}/remix", response_model=VideoOut, responses=ERRORS,
             openapi_extra=_request_body(VideoRemix, _form_schema({"prompt": _TEXT}, ["prompt"])))
async def remix_video(request: Request, video_id: str, body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Queue a remix: a modify of the caller's completed video ``video_id`` under the new ``prompt`` in mode
    ``flex_2`` (the source's layout and motion, the prompt's look), on the source's model, at its aspect ratio
    and length. 404 for a video that is not the caller's, 409 for one not completed."""
    parsed: VideoRemix = read_form(request, body, VideoRemix, None)[0]
    source = await run_in_threadpool(_source, service, video_id, owner, "video_id")
    core = core_request(prompt=parsed.prompt, model=source.model, **parsed.controls(),
                        edit=ModifyEdit(source=GENERATION_SCHEME + source.id, mode=REMIX_MODE))
    generation = await submit(service, core, owner, {"media.url": "video_id", "media": "video_id"})
    return _render(request, generation, service)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": STARTED_AT, "owned_by": "dreamreel"}


@router.get("/models", response_model=ModelList, responses=ERRORS)
def list_models(service: Service) -> dict[str, Any]:
    """The server's own model names (``sora-2``/``sora-2-pro`` are accepted too, as the default model)."""
    return {"object": "list", "data": [_model(name) for name in service.models]}


@router.get("/models/{model}", response_model=ModelOut, responses=ERRORS)
def retrieve_model(model: str, service: Service) -> dict[str, Any]:
    """A model this server accepts: one of its own, or an alias (``sora-2``: the default model)."""
    if model not in service.models and model not in ALIASES:
        raise NotFound(f"model {model[:60]!r} not found; known: {', '.join([*service.models, *ALIASES])}",
                       field="model")
    return _model(model)


def _refuse_video_file(parsed: Any, video_file: FilePart | None) -> Any:
    if video_file is not None:
        raise NotSupported("Invalid request: video: an uploaded video file is not accepted yet; pass "
                           "video[id] (a completed video of this server)", field="video")
    return parsed


def _source(service: GenerationService, video_id: str, owner: str, field: str = "video") -> Generation:
    """The caller's video ``video_id``; another key's is a 404 like a missing one."""
    try:
        return service.get(video_id, owner=owner)
    except NotFound:
        raise NotFound(f"video {video_id[:200]} not found", field=field) from None


def _page(service: GenerationService, owner: str, after: str | None, limit: int,
          order: str) -> tuple[list[Generation], bool]:
    """``limit`` videos after ``after`` in ``order``; the store pages newest first by offset, so the cursor is
    turned into an offset by finding ``after`` in that order."""
    if after is None:
        _, total = service.list(owner=owner, limit=0, offset=0)
        position = -1 if order == "desc" else total
    else:
        position, total = _position(service, owner, after)
    if order == "desc":
        page, _ = service.list(owner=owner, limit=limit, offset=position + 1)
        return page, position + 1 + len(page) < total
    start = max(0, position - limit)
    page, _ = service.list(owner=owner, limit=position - start, offset=start)
    return page[::-1], start > 0


def _position(service: GenerationService, owner: str, video_id: str) -> tuple[int, int]:
    """Where ``video_id`` is in the owner's newest-first list, and the list's length."""
    offset = 0
    while True:
        page, total = service.list(owner=owner, limit=MAX_PAGE, offset=offset)
        for index, generation in enumerate(page):
            if generation.id == video_id:
                return offset + index, total
        if len(page) < MAX_PAGE:
            raise NotFound(f"video {video_id[:200]} not found", field="after")
        offset += MAX_PAGE


def error_response(exc: DreamreelError) -> JSONResponse:
    """OpenAI's envelope; a refused value (dreamreel's 422) is OpenAI's 400."""
    status = 400 if exc.status_code == 422 else exc.status_code
    kind = TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = getattr(exc, "openai_code", None) or CODES.get(status) or ("invalid_value" if status == 400 else None)
    return JSONResponse(status_code=status, content={"error": {
        "message": exc.message, "type": kind, "param": exc.field, "code": code}})


DIALECT = Dialect(name="openai", router=router, path_prefixes=(PREFIX + "/",), status_words=STATUS_WORDS,
                  render_error=error_response, notify_on=frozenset())
"""OpenAI's video API documents webhooks per project, not per request: polling only."""
