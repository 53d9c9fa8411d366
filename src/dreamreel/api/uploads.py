"""``/uploads``: keep an image on the server for use as a keyframe (``upload:<id>``); list and delete them.

For clients whose images are not reachable by URL and too big to inline as ``data:`` URIs comfortably.
The body is the raw image (PNG/JPEG/WEBP/GIF/BMP, at most ``max_body_bytes``). Decoding is the costly part
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
either; deleting frees them). Errors use ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from dreamreel.api.deps import AppSettings, Body, Owner
from dreamreel.api.schema import IMAGE_TYPES, DetailError, ResponseModel, binary_request_body, error_responses
from dreamreel.config import Settings
from dreamreel.core.conditioning import UPLOAD_SCHEME
from dreamreel.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from dreamreel.core.filestore import UploadQuota, check_upload_quota
from dreamreel.files import LocalFiles
from dreamreel.media.images import ImageError, ImageTooLarge, check_decodes, read_header

router = APIRouter(tags=["uploads"])


class UploadOut(ResponseModel):
    id: str
    url: str
    """Reference it as a keyframe image URL: ``upload:<id>``."""
    width: int
    height: int
    """Upright size (EXIF orientation applied)."""


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


def _decode_and_give_back(body: bytes, max_pixels: int) -> tuple[int, int]:
    """Decode (in a pool thread), then hand the freed heap back to the OS: glibc keeps a decoded frame's
    ~50 MB in the thread's malloc arena otherwise, and over many pool threads that adds up to RSS that
    never goes down."""
    try:
        return check_decodes(body, max_pixels=max_pixels)
    finally:
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)


def _files(request: Request) -> LocalFiles:
    return request.app.state.files


def _quota(settings: Settings) -> UploadQuota:
    return UploadQuota(max_count=settings.upload_max_count, max_bytes=settings.upload_max_bytes)


@router.post("/uploads", status_code=201, response_model=UploadOut, responses=error_responses(DetailError),
             openapi_extra=binary_request_body(IMAGE_TYPES, "The image file (PNG, JPEG, WEBP, GIF or BMP)."))
async def upload_image(request: Request, owner: Owner, body: Body, settings: AppSettings) -> UploadOut:
    """Store an image; answer its id, its ``upload:<id>`` reference and its upright size."""
    upload_id, width, height = await save_image(request, owner, body, settings)
    return UploadOut(id=upload_id, url=f"{UPLOAD_SCHEME}{upload_id}", width=width, height=height)


async def save_image(
    request: Request, owner: str, body: bytes, settings: Settings, field: str = "body"
) -> tuple[str, int, int]:
    """Check ``body`` as ``POST /uploads`` does (quota, header, one bounded decode) and keep it as one of the
    owner's uploads: ``(upload id, width, height)``. Also how the OpenAI dialect takes an uploaded
    ``input_reference``; ``field`` is the request field that errors name."""
    limit = settings.max_image_pixels
    files, quota = _files(request), _quota(settings)
    # Cheap checks first, so nothing over a limit waits for a decode slot: the quota (checked again,
    # atomically, when the file is written) and the header.
    check_upload_quota(await run_in_threadpool(files.list_uploads, owner), len(body), quota)
    try:
        read_header(body, max_pixels=limit)
        async with _decode_slots(request, settings):
            width, height = await run_in_threadpool(_decode_and_give_back, body, limit)
    except ImageTooLarge as exc:
        raise PayloadTooLarge(f"image too large: {exc} (max_image_pixels)", field=field) from None
    except ImageError as exc:
        raise InvalidRequest(f"not a usable image: {exc}", field=field) from None
    upload_id = await run_in_threadpool(files.save_upload, owner, body, quota)
    return upload_id, width, height


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
