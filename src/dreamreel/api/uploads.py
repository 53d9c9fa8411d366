"""``/uploads``: keep an image (a keyframe) or a video (an edit's source) on the server as ``upload:<id>``; list
and delete them.

For clients whose files are not reachable by URL and too big to inline as ``data:`` URIs comfortably. The body
is the raw file; which kind it is comes from its first bytes, never from ``Content-Type``.

**A video** (MP4, MOV or WebM: ``media/video_source.py``) may be up to ``max_video_bytes`` (100 MB; this route's
body cap is raised for it, ``api/deps.VIDEO_BODY_ROUTES``). Its header is read and its first frame decoded
before it is kept: a file over ``max_video_bytes``, a frame size over 4k or a length no edit takes (over
30 s) is a 413 naming the limit, a corrupt file or a codec outside the allow-list a 422; nothing unusable is
stored. The answer carries
its upright size, frame rate, frame count and length, which decide an edit's output at submission. The body
is held in memory while it is checked (as every body here is), so ``max_video_bytes`` also bounds what one
upload costs the API process.

**An image** (PNG/JPEG/WEBP/GIF/BMP) may be up to ``max_body_bytes``. Decoding is the costly part
of an upload (a 128 KB PNG can declare 6500x6000 pixels, 117 MB decoded), so it is bounded three ways:

- the header is read first and an image over ``max_image_pixels`` is a 413 naming the limit, before a pixel
  is decoded;
- the pixels are then decoded once (so a corrupt image is a 422 now rather than a failed job later) in the
  image's own mode and dropped, under a per-process semaphore of ``image_decode_concurrency``: parallel
  uploads wait their turn in the event loop instead of multiplying memory; after each decode the freed heap
  is handed back to the OS (``malloc_trim``), so RSS returns to where it was;
- Pillow's own decompression-bomb limit is set explicitly (``media/images.py``).

Uploads belong to the caller's key: only that key can reference, list or delete them (another key's id is
a 404), and each key holds at most ``upload_max_count`` uploads and ``upload_max_bytes`` bytes (413 past
either; deleting frees them). The default byte quota (512 MiB) holds five videos of the largest size, so a
key can keep a few sources around while its edits run. Errors use ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import io
from collections.abc import Callable
from typing import Literal, ParamSpec, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from dreamreel.api.deps import AppSettings, Body, Owner
from dreamreel.api.schema import IMAGE_TYPES, DetailError, ResponseModel, binary_request_body, error_responses
from dreamreel.config import Settings
from dreamreel.core.conditioning import UPLOAD_SCHEME
from dreamreel.core.edits import LENGTH_TOLERANCE_S, REFRAME_MAX_S, SourceFacts
from dreamreel.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from dreamreel.core.filestore import UploadQuota, check_upload_quota
from dreamreel.core.service import UploadFacts
from dreamreel.files import LocalFiles
from dreamreel.media.images import ImageError, ImageTooLarge, check_decodes, read_header
from dreamreel.media.video_source import SNIFF_BYTES, VideoSourceError, VideoTooLarge, read_facts, sniff_container

router = APIRouter(tags=["uploads"])

VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
UPLOAD_TYPES = (*IMAGE_TYPES[:-1], *VIDEO_TYPES, IMAGE_TYPES[-1])
"""What ``POST /uploads`` takes (``application/octet-stream`` last): the type is read from the bytes."""
MAX_VIDEO_S = REFRAME_MAX_S
"""The longest video any edit takes: a longer upload could never be used."""

P = ParamSpec("P")
R = TypeVar("R")


class UploadOut(ResponseModel):
    id: str
    url: str
    """Reference it as ``upload:<id>``: an image as a keyframe's URL, a video as an edit's source (``media.url``)."""
    kind: Literal["image", "video"]
    width: int
    height: int
    """Upright size (an image's EXIF orientation, a video's display rotation applied)."""
    duration_s: float | None = None
    """A video's length in seconds (``frames / fps``); absent for an image."""
    fps: float | None = None
    frames: int | None = None
    """A video's frame rate and frame count, from its header; absent for an image."""


class UploadItem(ResponseModel):
    id: str
    url: str
    bytes: int
    created_at: float


class UploadList(ResponseModel):
    uploads: list[UploadItem]
    """Oldest first."""
    count: int
    bytes: int
    max_count: int
    max_bytes: int


def _decode_slots(request: Request, settings: Settings) -> asyncio.Semaphore:
    """This process's decode semaphore (one per app, made on first use inside its event loop)."""
    state = request.app.state
    slots = getattr(state, "upload_decode_slots", None)
    if slots is None:
        slots = state.upload_decode_slots = asyncio.Semaphore(settings.image_decode_concurrency)
    return slots


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: its allocator keeps what it keeps
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _give_back_after(decode: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Decode (in a pool thread), then hand the freed heap back to the OS: glibc keeps a decoded frame's
    ~50 MB in the thread's malloc arena otherwise, and over many pool threads that adds up to RSS that
    never goes down."""
    try:
        return decode(*args, **kwargs)
    finally:
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)


def _files(request: Request) -> LocalFiles:
    return request.app.state.files


def _quota(settings: Settings) -> UploadQuota:
    return UploadQuota(max_count=settings.upload_max_count, max_bytes=settings.upload_max_bytes)


@router.post("/uploads", status_code=201, response_model=UploadOut, response_model_exclude_none=True,
             responses=error_responses(DetailError),
             openapi_extra=binary_request_body(UPLOAD_TYPES, "The image (PNG, JPEG, WEBP, GIF or BMP) or video "
                                                             "(MP4, MOV or WebM) file."))
async def upload_file(request: Request, owner: Owner, body: Body, settings: AppSettings) -> UploadOut:
    """Store an image or a video; answer its id, its ``upload:<id>`` reference, its kind and upright size, and
    a video's length, frame rate and frame count."""
    if is_video(body):
        upload_id, facts = await save_video(request, owner, body, settings)
        return UploadOut(id=upload_id, url=f"{UPLOAD_SCHEME}{upload_id}", kind="video", width=facts.width,
                         height=facts.height, duration_s=round(facts.duration_s, 3), fps=facts.fps,
                         frames=facts.frames)
    upload_id, width, height = await save_image(request, owner, body, settings,
                                                what="image (PNG, JPEG, WEBP, GIF, BMP) or video (MP4, MOV, WebM)")
    return UploadOut(id=upload_id, url=f"{UPLOAD_SCHEME}{upload_id}", kind="image", width=width, height=height)


def is_video(body: bytes) -> bool:
    """Whether ``body`` begins as an MP4, MOV or WebM file does (what is inside is :func:`save_video`'s check)."""
    return sniff_container(body[:SNIFF_BYTES]) is not None


async def save_image(
    request: Request, owner: str, body: bytes, settings: Settings, field: str = "body", what: str = "image"
) -> tuple[str, int, int]:
    """Check ``body`` as ``POST /uploads`` does (size, quota, header, one bounded decode) and keep it as one of
    the owner's uploads: ``(upload id, width, height)``. Also how the OpenAI dialect takes an uploaded
    ``input_reference``; ``field`` is the request field that errors name, ``what`` what a refusal says it is
    not."""
    limit = settings.max_image_pixels
    files, quota = _files(request), _quota(settings)
    if len(body) > settings.max_body_bytes:
        raise PayloadTooLarge(f"image too large: {len(body)} bytes, over the {settings.max_body_bytes}-byte limit "
                              "(max_body_bytes)", field=field)
    # Cheap checks first, so nothing over a limit waits for a decode slot: the quota (checked again,
    # atomically, when the file is written) and the header.
    check_upload_quota(await run_in_threadpool(files.list_uploads, owner), len(body), quota)
    try:
        read_header(body, max_pixels=limit)
        async with _decode_slots(request, settings):
            width, height = await run_in_threadpool(_give_back_after, check_decodes, body, max_pixels=limit)
    except ImageTooLarge as exc:
        raise PayloadTooLarge(f"image too large: {exc} (max_image_pixels)", field=field) from None
    except ImageError as exc:
        raise InvalidRequest(f"not a usable {what}: {exc}", field=field) from None
    upload_id = await run_in_threadpool(files.save_upload, owner, body, quota)
    return upload_id, width, height


async def save_video(
    request: Request, owner: str, body: bytes, settings: Settings, field: str = "body"
) -> tuple[str, SourceFacts]:
    """Check ``body`` as ``POST /uploads`` does for a video (size against ``max_video_bytes``, quota, header
    caps and length, first frame decoded) and keep it as one of the owner's uploads: ``(upload id, facts)``.
    Also how the OpenAI dialect takes the video file of ``POST /v1/videos/edits`` (``upload:<id>`` is then the
    edit's source); ``field`` is the request field that errors name. 413 for a file, frame size or length over
    a cap, 422 for a file that is no usable video."""
    if len(body) > settings.max_video_bytes:
        raise PayloadTooLarge(f"video too large: {len(body)} bytes, over the {settings.max_video_bytes}-byte limit "
                              "(max_video_bytes)", field=field)
    files, quota = _files(request), _quota(settings)
    check_upload_quota(await run_in_threadpool(files.list_uploads, owner), len(body), quota)
    try:
        async with _decode_slots(request, settings):
            facts = await run_in_threadpool(_give_back_after, read_facts, io.BytesIO(body))
    except VideoTooLarge as exc:
        raise PayloadTooLarge(f"video too large: {exc}", field=field) from None
    except VideoSourceError as exc:
        raise InvalidRequest(f"not a usable video: {exc}", field=field) from None
    if facts.duration_s > MAX_VIDEO_S + LENGTH_TOLERANCE_S:
        raise PayloadTooLarge(f"video too long: {facts.duration_s:.1f} s; edits take at most {MAX_VIDEO_S:g} s",
                              field=field)
    upload_id = await run_in_threadpool(files.save_upload, owner, body, quota)
    return upload_id, facts


def upload_video_facts(files: LocalFiles) -> UploadFacts:
    """The service's ``upload_video_facts``: ``(owner, upload id) -> SourceFacts`` read from the kept file's
    header, None when that upload is not a video (an image). An upload that sniffs as a video but no longer
    reads as one is a 422 naming ``media``; a vanished one a 404."""

    def facts(owner: str, upload_id: str) -> SourceFacts | None:
        missing = NotFound(f"media.url: upload {upload_id[:80]!r} not found", field="media")
        path = files.upload_path(owner, upload_id)
        if path is None:
            raise missing
        try:
            with path.open("rb") as file:
                head = file.read(SNIFF_BYTES)
        except FileNotFoundError:  # deleted since it was listed
            raise missing from None
        if sniff_container(head) is None:
            return None
        try:
            return read_facts(path)
        except VideoSourceError as exc:
            raise InvalidRequest(f"media.url: upload {upload_id[:80]!r} is not a usable video: {exc}",
                                 field="media") from None

    return facts


@router.get("/uploads", response_model=UploadList, responses=error_responses(DetailError))
async def list_uploads(request: Request, owner: Owner, settings: AppSettings) -> UploadList:
    """The caller's uploads and how much of its quota they use."""
    uploads = await run_in_threadpool(_files(request).list_uploads, owner)
    items = [UploadItem(id=u.id, url=f"{UPLOAD_SCHEME}{u.id}", bytes=u.bytes, created_at=u.created_at)
             for u in uploads]
    return UploadList(uploads=items, count=len(items), bytes=sum(u.bytes for u in uploads),
                      max_count=settings.upload_max_count, max_bytes=settings.upload_max_bytes)


@router.delete("/uploads/{upload_id}", status_code=204, response_class=Response, responses=error_responses(DetailError))
async def delete_upload(upload_id: str, request: Request, owner: Owner) -> Response:
    """Delete one of the caller's uploads (frees its quota); another key's id is a 404. A job already queued
    with it fails with an ``input`` error when it runs."""
    upload_id = upload_id.removeprefix(UPLOAD_SCHEME)  # the reference form works too
    if not await run_in_threadpool(_files(request).delete_upload, owner, upload_id):
        raise NotFound(f"upload {upload_id[:80]} not found")
    return Response(status_code=204)
