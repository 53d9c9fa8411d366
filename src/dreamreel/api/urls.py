"""Storage keys -> public file URLs (the files route serves them)."""

from __future__ import annotations

from urllib.parse import quote


def file_url(base_url: str, key: str | None) -> str | None:
    return f"{base_url.rstrip('/')}/files/{quote(key)}" if key else None
