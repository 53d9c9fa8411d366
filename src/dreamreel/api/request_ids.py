"""``X-Request-Id``: every HTTP request gets an id, the caller's when it sends a usable one, else a new one; it is
answered back in the same header and carried by every log line written while the request is served
(``core/logs.py``), so an operator can find one request's lines among many."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dreamreel.core.logs import request_id

HEADER = b"x-request-id"
USABLE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
"""What a caller's id may look like to be kept (a log field and a header value both stay clean); else a new one."""


class RequestIds:
    """Pure ASGI middleware: the request id in the context and on the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), b"")
        current = given.decode() if USABLE.match(given) else uuid.uuid4().hex
        token = request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, current.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
