"""Request-scoped dependencies: the core service, settings and the caller's identity."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from dreamreel.config import Settings
from dreamreel.core.errors import PayloadTooLarge, Unauthorized
from dreamreel.core.service import GenerationService

LOCAL_OWNER = "local"
"""Owner of every generation when the server runs without API keys (one trusted user)."""


def get_service(request: Request) -> GenerationService:
    return request.app.state.service


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def _token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "key") and token.strip():
        return token.strip()
    return None


def get_owner(request: Request) -> str:
    """Who is calling: an opaque id derived from their key, so generations stay per-key."""
    settings: Settings = request.app.state.settings
    if not settings.api_keys:
        return LOCAL_OWNER
    token = _token_from(request)
    if token is None or not any(hmac.compare_digest(token, key) for key in settings.api_keys):
        raise Unauthorized("missing or invalid API key (send Authorization: Bearer <key>)")
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]


async def read_body(request: Request) -> bytes:
    """The raw body, refused early when larger than the configured cap."""
    limit = request.app.state.settings.max_body_bytes
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
Body = Annotated[bytes, Depends(read_body)]
AppSettings = Annotated[Settings, Depends(get_settings)]
