"""The playground at ``/``: a page to make, watch and chain videos, served as static files by the API process.

The page (``api/playground/``: one HTML file, one script, one stylesheet; no build step, nothing fetched from
elsewhere) talks to this server only through the public API a client would use: the Luma dialect for
generations and edits, ``/uploads`` for images, ``/models`` for what each model can do. docs/playground.md
describes it.

The answers carry a strict Content Security Policy: the page runs only its own script, calls only its own origin
and shows media from there and the public URL (plus the ``blob:`` URLs of images it shows before upload), so a
prompt or a failure reason shown in it can never run as code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ASSETS = Path(__file__).with_name("playground")
PAGE_PATH, ASSETS_PATH = "/", "/playground"
"""The page and its files: a web page, not API operations, so they stay out of the OpenAPI document."""


def page_headers(public_url: str) -> dict[str, str]:
    """The page's headers. Its files (clips, posters, previews) are signed URLs on the public URL, which may be
    another origin than the one the page was opened at (``localhost`` for ``127.0.0.1``), so that origin is
    allowed for images and media too."""
    files = ""
    parts = urlsplit(public_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        files = f" {parts.scheme}://{parts.netloc}"
    policy = (f"default-src 'self'; img-src 'self' blob: data:{files}; media-src 'self'{files}; "
              "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache"}


class _Assets(StaticFiles):
    """Starlette's static files with the page's headers on every answer."""

    def __init__(self, headers: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.page_headers)
        return response


def add_playground(app: FastAPI, public_url: str) -> None:
    """``GET /`` (the page) and ``/playground/*`` (its script and stylesheet), outside the OpenAPI document."""
    headers = page_headers(public_url)

    @app.get(PAGE_PATH, include_in_schema=False)
    async def playground(request: Request) -> FileResponse:
        return FileResponse(ASSETS / "index.html", media_type="text/html; charset=utf-8", headers=headers)

    app.mount(ASSETS_PATH, _Assets(headers, directory=ASSETS), name="playground")
