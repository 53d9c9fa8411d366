"""``GET /files/{key}?exp=&sig=``: generated videos and posters, by signed URL, with HTTP Range and ETag.

Only a URL this server (or another node sharing its secret) signed, and before it expires, is served
(``api/urls.py``). Anything else — unsigned, tampered, expired — is the same 404 as a missing file, so the
answer says nothing about whether a file exists. Responses are ``cache-control: private`` and cacheable only
until the URL expires: a shared cache must not keep serving a file after its URL (or the file) is gone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fastapi import APIRouter, Query, Request, Response

from dreamreel.api.reads import PooledFileResponse, file_stat, run_read
from dreamreel.api.schema import file_responses
from dreamreel.api.urls import file_urls
from dreamreel.core.errors import NotFound
from dreamreel.files import LocalFiles

router = APIRouter(tags=["files"])

MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png"}
FILE_DOC = file_responses((*MEDIA_TYPES.values(), "application/octet-stream"))


@router.get("/files/{key:path}", response_class=Response, responses=FILE_DOC)
@router.head("/files/{key:path}", response_class=Response, responses=FILE_DOC)
async def get_file(
    key: str,
    request: Request,
    exp: str | None = Query(default=None, description="Expiry (unix seconds) the URL was signed with."),
    sig: str | None = Query(default=None, description="The URL's signature."),
) -> Response:
    """The file, read in the read pool (``api/reads.py``): the event loop never waits on the disk."""
    seconds_left = file_urls(request).seconds_left(key, exp, sig)
    found = await run_read(_find, request.app.state.files, key) if seconds_left is not None else None
    if found is None:
        raise NotFound(f"file {key} not found")
    path, stat = found
    # Files are written once by atomic rename, so (inode, size, mtime) identifies a version.
    etag = '"' + hashlib.sha256(f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:32] + '"'
    headers = {"etag": etag, "cache-control": f"private, max-age={seconds_left}"}
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return PooledFileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        filename=path.name,
        content_disposition_type="inline",
        headers=headers,
        stat_result=stat,
    )


def _find(files: LocalFiles, key: str) -> tuple[Path, os.stat_result] | None:
    """The file behind ``key`` and its stat; None when absent (or deleted since it was looked up)."""
    path = files.path_for(key)
    stat = file_stat(path) if path is not None else None
    return (path, stat) if path is not None and stat is not None else None
