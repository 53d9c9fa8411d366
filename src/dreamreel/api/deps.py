"""Request-scoped dependencies: the core service, settings and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dreamreel.api.keyring import Caller
from dreamreel.api.reads import run_read
from dreamreel.config import Settings
from dreamreel.core.errors import PayloadTooLarge
from dreamreel.core.service import GenerationService


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off
# that cost more than any of them does; the one that may need the store hands only that part to a thread.
async def get_service(request: Request) -> GenerationService:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_caller(request: Request) -> Caller:
    """Who is calling (``api/keyring.py``); resolved once per request (the admission middleware may have),
    from the key cache on the event loop, or in the read pool when an entry has to be read again."""
    caller = getattr(request.state, "caller", None)
    if caller is None:
        keyring = request.app.state.keyring
        header = request.headers.get("authorization")
        caller = keyring.resolve_cached(header)
        if caller is None:
            caller = await run_read(keyring.resolve, header)
        request.state.caller = caller
    return caller


async def get_owner(caller: Annotated[Caller, Depends(get_caller)]) -> str:
    """The owner id the caller's generations, uploads and ledger entries carry."""
    return caller.owner


VIDEO_BODY_ROUTES = frozenset({("POST", "/uploads"), ("POST", "/v1/videos/edits")})
"""The routes whose body may carry a source video (raw, or as a multipart form's file): capped by
:func:`video_body_limit` instead of ``max_body_bytes``. Each still checks the video itself against
``max_video_bytes`` (and an image in such a body against ``max_body_bytes``)."""
FORM_OVERHEAD_BYTES = 1024 * 1024
"""Room for a form's other fields and part headers around a video of ``max_video_bytes``."""


def video_body_limit(settings: Settings) -> int:
    """The body cap of :data:`VIDEO_BODY_ROUTES`."""
    return max(settings.max_body_bytes, settings.max_video_bytes + FORM_OVERHEAD_BYTES)


def body_limit(method: str, path: str, max_body_bytes: int, video_body_bytes: int) -> int:
    """The body cap of one request: ``video_body_bytes`` on :data:`VIDEO_BODY_ROUTES`, else ``max_body_bytes``
    (decided by method and path, before routing: the admission middleware reads bodies too)."""
    return video_body_bytes if (method, path) in VIDEO_BODY_ROUTES else max_body_bytes


async def read_body(request: Request) -> bytes:
    """The raw body, refused early when larger than the route's cap (:func:`body_limit`)."""
    settings = request.app.state.settings
    limit = body_limit(request.method, request.scope["path"], settings.max_body_bytes, video_body_limit(settings))
    return await read_capped(request, limit)


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, or ``PayloadTooLarge`` as soon as its declared or received size passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    return bytes(body)


Service = Annotated[GenerationService, Depends(get_service)]
Owner = Annotated[str, Depends(get_owner)]
CallerDep = Annotated[Caller, Depends(get_caller)]
Body = Annotated[bytes, Depends(read_body)]
AppSettings = Annotated[Settings, Depends(get_settings)]
