"""``POST /uploads``: keep an image on the server for use as a keyframe (``upload:<id>``).

For clients whose images are not reachable by URL and too big to inline as ``data:`` URIs comfortably.
The body is the raw image (PNG/JPEG/WEBP/GIF/BMP, at most ``max_body_bytes``); it is decoded once here
so a non-image is a 422 now rather than a failed job later. Uploads belong to the caller's key: only
the same key can reference them. Errors use ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from dreamreel.api.deps import Body, Owner, Service
from dreamreel.core.conditioning import UPLOAD_SCHEME
from dreamreel.core.errors import InvalidRequest
from dreamreel.media.images import ImageError, decode_image

router = APIRouter(tags=["uploads"])


@router.post("/uploads", status_code=201)
async def upload_image(body: Body, service: Service, owner: Owner) -> dict[str, Any]:
    """Store an image; answer ``{"id", "url": "upload:<id>", "width", "height"}``."""
    try:
        image = await run_in_threadpool(decode_image, body)
    except ImageError as exc:
        raise InvalidRequest(f"not a usable image: {exc}", field="body") from None
    upload_id = await run_in_threadpool(service.upload, body, owner=owner)
    return {"id": upload_id, "url": f"{UPLOAD_SCHEME}{upload_id}", "width": image.width, "height": image.height}
