"""Storage keys -> public file URLs (the files route serves them)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request


def public_base(request: Request) -> str:
    """Where clients reach this server: the configured public URL, else the URL this request came to."""
    return request.app.state.public_url or str(request.base_url).rstrip("/")


def file_url(base_url: str, key: str | None) -> str | None:
    return f"{base_url.rstrip('/')}/files/{quote(key)}" if key else None
