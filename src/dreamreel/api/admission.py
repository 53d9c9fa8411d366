"""Admission of creating requests: every POST makes work (a generation, an upscale, an upload), so every POST
passes here first, in every dialect.

In order: the caller is identified (401); new work is refused while the output volume is nearly full (503
with ``Retry-After``); the key's requests-per-minute limit is counted in the store, so it holds across API
nodes (429 with ``Retry-After``); and an ``Idempotency-Key`` header makes the request safe to retry — the
same key and body within 24 h get the first response back and create nothing (the ``openai`` and ``fal``
clients retry POSTs on their own), the same key with another body is a 422. Status polls and downloads
(GET, HEAD) are not counted.

A pure ASGI middleware rather than a FastAPI dependency because a replay must answer without running the
route at all, and the first response has to be captured as it is sent.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyio import to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dreamreel.api.deps import body_limit, read_capped
from dreamreel.api.forms import boundary_of
from dreamreel.api.keyring import Caller, KeyRing
from dreamreel.core.accounts import StoredResponse
from dreamreel.core.errors import DreamreelError, InvalidRequest, ServiceBusy, TooManyRequests
from dreamreel.core.jobstore import JobStore

CREATING_METHODS = frozenset({"POST"})
MAX_IDEMPOTENCY_KEY_CHARS = 255
DISK_RETRY_AFTER_S = 60

ErrorRenderer = Callable[[Request, DreamreelError], Response]


class AdmissionMiddleware:
    def __init__(
        self, app: ASGIApp, *, keyring: KeyRing, store: JobStore, storage_dir: Path, min_free_bytes: int,
        max_body_bytes: int, render_error: ErrorRenderer, video_body_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.store = store
        self.storage_dir = storage_dir
        self.min_free_bytes = min_free_bytes
        self.max_body_bytes = max_body_bytes
        self.video_body_bytes = video_body_bytes or max_body_bytes
        """The cap on ``deps.VIDEO_BODY_ROUTES`` (``deps.video_body_limit``); unset, ``max_body_bytes``."""
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CREATING_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            caller = await to_thread.run_sync(self._admit, request)
            idempotency_key = _idempotency_key(request)
            if idempotency_key is None:
                await self.app(scope, receive, send)
                return
            limit = body_limit(scope["method"], scope["path"], self.max_body_bytes, self.video_body_bytes)
            body = await read_capped(request, limit)
            fingerprint = _fingerprint(request, body)
            stored = await to_thread.run_sync(self.store.begin_idempotent, caller.owner, idempotency_key, fingerprint)
        except DreamreelError as exc:
            await self.render_error(request, exc)(scope, receive, send)
            return
        except ClientDisconnect:  # hung up (or cut off by the edge's body timeout) mid-body: nobody to answer
            return
        if stored is not None:
            replay = Response(stored.body, status_code=stored.status, media_type=stored.content_type,
                              headers={"Idempotent-Replayed": "true"})
            await replay(scope, receive, send)
            return
        await self._run_and_keep(scope, body, receive, send, caller, idempotency_key)

    def _admit(self, request: Request) -> Caller:
        """Identify the caller and apply the checks that need no body (runs in a worker thread: store I/O)."""
        caller = self.keyring.resolve(request.headers.get("authorization"))
        request.state.caller = caller  # the route's Owner dependency reuses it
        if self.min_free_bytes and _free_bytes(self.storage_dir) < self.min_free_bytes:
            raise ServiceBusy("the server's output volume is nearly full; no new work is accepted until space "
                              "is freed", retry_after_s=DISK_RETRY_AFTER_S)
        rpm = caller.limits.rpm
        if rpm is not None:
            count, window_left_s = self.store.count_request(caller.owner)
            if count > rpm:
                raise TooManyRequests(f"this key may make {rpm} creating requests per minute; retry after the "
                                      "minute ends", retry_after_s=math.ceil(window_left_s),
                                      limit="requests_per_minute")
        return caller

    async def _run_and_keep(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, caller: Caller, key: str
    ) -> None:
        """Run the route with the already-read body; keep its response for replays when it succeeded."""
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:  # the body was read here already: what comes next is the client's disconnect
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        started: dict[str, Any] = {}
        chunks: list[bytes] = []
        kept = False

        async def keep(response: StoredResponse | None) -> None:
            nonlocal kept
            kept = True
            await to_thread.run_sync(self.store.finish_idempotent, caller.owner, key, response)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Kept before the response's last byte leaves: a client that retries as soon as it has the
                    # answer gets it replayed, never a 409 "still being processed".
                    await keep(_stored(started, chunks))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            if not kept:  # no complete response: forget the key so a retry runs
                await keep(None)


def _stored(started: dict[str, Any], chunks: list[bytes]) -> StoredResponse | None:
    """The response to replay when it succeeded (2xx), else None."""
    status = int(started.get("status", 500))
    if not 200 <= status < 300:
        return None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in started.get("headers", [])}
    return StoredResponse(status=status, content_type=headers.get("content-type", "application/json"),
                          body=b"".join(chunks))


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_CHARS or not (value.isascii() and value.isprintable()):
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
                             field="Idempotency-Key")
    return value


def _fingerprint(request: Request, body: bytes) -> str:
    """What makes two requests "the same": method, path, query and body bytes — a multipart body with its
    boundary taken out, since a client retrying a form draws a new random boundary for the same fields."""
    boundary = _multipart_boundary(request.headers.get("content-type", ""))
    if boundary:
        body = body.replace(b"--" + boundary, b"--<boundary>")
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _multipart_boundary(content_type: str) -> bytes | None:
    """A form's boundary (read by ``api/forms.py``'s rules), or None for any other body or a form without one."""
    if content_type.partition(";")[0].strip().lower() != "multipart/form-data":
        return None
    try:
        return boundary_of(content_type).encode("latin-1")
    except InvalidRequest:  # the route refuses such a body itself
        return None


def _free_bytes(path: Path) -> int:
    """Free space of the volume ``path`` is (or will be) on."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free
