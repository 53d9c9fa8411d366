"""``GET /files/{key}``: generated videos and posters, with HTTP Range (seeking) and ETag caching."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from dreamreel.core.errors import NotFound

router = APIRouter(tags=["files"])

MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png"}


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"])
def get_file(key: str, request: Request) -> Response:
    path = request.app.state.files.path_for(key)
    if path is None:
        raise NotFound(f"file {key} not found")
    stat = path.stat()
    # Files are written once by atomic rename, so (inode, size, mtime) identifies a version.
    etag = '"' + hashlib.sha256(f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:32] + '"'
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"etag": etag})
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        filename=path.name,
        content_disposition_type="inline",
        headers={"etag": etag, "cache-control": "public, max-age=31536000, immutable"},
    )
