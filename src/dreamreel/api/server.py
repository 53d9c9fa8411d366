"""The HTTP edge of ``dreamreel serve``: uvicorn with connection guards.

uvicorn closes idle *kept-alive* connections, but nothing else: a socket that sends nothing, part of its
headers, or a body shorter than its ``Content-Length`` is held forever, and enough of them exhaust the
process's file descriptors (the API stops accepting, and asyncio logs every failed ``accept``). The guards:

- **header timeout**: from a connection's opening, or from the first byte of its next request, the whole
  request line and headers must arrive within ``header_timeout_seconds``; else the connection is closed
  (after a 408 when a request had begun);
- **body timeout**: while a request body is still owed, some of it must arrive every
  ``body_timeout_seconds`` (time the server itself is not reading — flow control, or a ``100 Continue``
  the app has not asked for yet — does not count); else a 408 if no response has started, and the
  connection is closed;
- **connection caps**: past ``max_connections`` open connections (or ``max_connections_per_client`` from
  one address, when set) a new one gets a 503 with ``Retry-After`` and is closed at once, before it holds
  a descriptor for long. At start the open-file limit is raised to its hard limit and the cap is kept well
  under it (:func:`connection_cap`);
- protocol errors (malformed or oversized headers) answer in the error shape of the dialect whose path
  the request line named, like every other error.

**Why a subclass of uvicorn's httptools protocol** (passed as ``http=`` to ``uvicorn.Config``) rather than an
ASGI wrapper or another server: the guards must see bytes arrive on the socket. An ASGI wrapper sees a request
only once its headers are complete and its body only when the app asks for it, so a connection that never
finishes its headers is invisible to it; only the protocol that owns the socket sees it. Subclassing keeps
everything else uvicorn does (parsing, flow control, keep-alive, pipelining, graceful shutdown, TLS options)
exactly as tested, and adds timers where the parser says a head or a body is complete. httptools (llhttp, in C)
rather than uvicorn's pure-Python h11: a status poll spent a third of its CPU parsing and writing HTTP in h11
(docs/benchmarks.md, "The API under load"), and polls are most of what the API serves.

Limits: with TLS, asyncio completes the handshake before the protocol sees the connection, so sockets
still handshaking are bounded by asyncio's own 60 s handshake timeout, not by these guards; on a hostile
network terminate TLS at a proxy in front. Without ``max_connections_per_client`` one client may fill the
cap (for ``header_timeout_seconds`` at a time, unless it sends requests); behind a proxy, every client has
the proxy's address, so per-client limits belong to the proxy. WebSocket upgrades are off (the API has no
WebSocket routes), so every connection stays under these guards.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dreamreel.api.app import render_error
from dreamreel.config import Settings
from dreamreel.core.errors import DreamreelError, ServiceBusy
from dreamreel.core.logthrottle import RepeatThrottle, install

log = logging.getLogger("dreamreel.edge")

FD_RESERVE = 128
"""Descriptors kept for everything but client sockets: the store, logs, worker pipes, uploads in flight."""
FDS_PER_CONNECTION = 2
"""A file download holds the file open beside its socket."""
MAX_HEADER_BYTES = 16 * 1024
"""The longest request head (request line and headers) accepted; a longer one is answered 431. The parser
(llhttp) sets no limit of its own."""
OWED_HEAD, OWED_BODY = "head", "body"
"""What a connection's client owes (``GuardedProtocol.owed``): the head of its next request, or a body."""


@dataclass(frozen=True)
class EdgeLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    max_per_client: int | None = None


def raise_open_file_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (children inherit it); returns the soft
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, target)
    return soft


def connection_cap(configured: int, open_file_limit: int) -> int:
    """``configured``, lowered so that every connection at the cap, each with a file open, still leaves
    ``FD_RESERVE`` descriptors free: accepting must never be what fails."""
    room = max(1, (open_file_limit - FD_RESERVE) // FDS_PER_CONNECTION)
    return min(configured, room)


def error_bytes(path: str, exc: DreamreelError) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response for ``exc``, in the error shape of the dialect that
    owns ``path`` (written straight to the socket: these errors happen before or outside the app)."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode("latin-1", "replace"),
             "query_string": b"", "headers": [], "scheme": "http", "server": None, "root_path": ""}
    response = render_error(Request(scope), exc)
    phrase = HTTPStatus(response.status_code).phrase
    lines = [f"HTTP/1.1 {response.status_code} {phrase}".encode()]
    lines += [name + b": " + value for name, value in response.raw_headers]
    lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + bytes(response.body)


def _error(status: int, message: str) -> DreamreelError:
    error = DreamreelError(message)
    error.status_code = status
    return error


def _path_of(head: bytes) -> str:
    """The path named by a (possibly partial or malformed) request line, or ``/``."""
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    target = parts[1] if len(parts) > 1 else b"/"
    path = target.split(b"?", 1)[0].decode("latin-1")
    return path if path.startswith("/") else "/"


class HeadTooLarge(Exception):
    """Raised by ``on_url`` to stop the parser: the request line passed :data:`MAX_HEADER_BYTES`."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body receive timeouts, a header size cap and connection caps.

    What the client owes is followed from the parser's callbacks: the head from the connection's opening (or the
    first byte of its next request) to ``on_headers_complete``; the body from there to ``on_message_complete``.
    Timers are armed or cancelled after each ``feed_data``, not inside the callbacks: a GET's head and end arrive
    in one read, and a timer armed and cancelled within it would only cost time."""

    limits: ClassVar[EdgeLimits]
    busy: ClassVar[bytes] = b""
    """The canned 503 for a connection over a cap (rendered once by :func:`protocol_for`)."""
    per_client: ClassVar[Counter[str]]
    """Open connections per client address, shared by every connection of one server."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused = False
        self.peer = ""
        self.header_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.owed = OWED_HEAD
        """What the client owes now: :data:`OWED_HEAD` (the next request's head: its header timer starts with
        the connection, or with that request's first byte) or :data:`OWED_BODY`."""
        self.head_bytes = 0
        """Bytes received since the last request was whole: the head being received (and, when requests are
        pipelined, the tail of the one before it)."""
        self.head_done = False
        """A head completed in the last read: its header timer is done."""
        self.head_too_large = False
        self.body_progress = False

    # --- the caps -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        per_client = self.limits.max_per_client
        if per_client is not None and self.per_client[self.peer] >= per_client:
            log.warning("per-client connection cap reached (%d open from %s): refusing its new connections",
                        per_client, self.peer)
        elif len(self.connections) >= self.limits.max_connections:
            log.warning("connection cap reached (%d open): refusing new connections", len(self.connections))
        else:
            self.per_client[self.peer] += 1
            super().connection_made(transport)
            self._arm_header_timer()
            return
        self.refused = True
        transport.write(self.busy)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self.per_client[self.peer] -= 1
        if self.per_client[self.peer] <= 0:
            del self.per_client[self.peer]
        self._cancel_timers()
        super().connection_lost(exc)

    # --- following what the client owes ----------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.refused or self.parser is None:
            return
        if self.owed is OWED_HEAD:
            self.head_bytes += len(data)
        else:
            self.body_progress = True
        super().data_received(data)  # the parser's callbacks below run in here
        if self.transport.is_closing():
            self._cancel_timers()
            return
        if self.owed is OWED_HEAD and self.head_bytes > MAX_HEADER_BYTES:
            self._refuse_head()  # still no complete head after the cap: the next read would only add to it
            return
        self._follow_state()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_HEADER_BYTES:
            self.head_too_large = True
            raise HeadTooLarge  # stops the parser; httptools wraps it, and uvicorn calls send_400_response

    def on_headers_complete(self) -> None:
        self.owed = OWED_BODY
        self.head_done = self.body_progress = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.owed = OWED_HEAD
        self.head_bytes = 0
        super().on_message_complete()
        self.url = b""  # an error before the next request's URL names no path of the last one

    def _follow_state(self) -> None:
        """Arm or cancel the timers after a read (``data_received`` has checked the transport is open)."""
        if self.head_done:
            self.head_done = False
            self._cancel_header_timer()
        if self.owed is OWED_HEAD:
            self._cancel_body_timer()
            if self.head_bytes:  # the next request has begun (the time between requests is the keep-alive timer's)
                self._arm_header_timer()
            return
        self._cancel_header_timer()
        if self.body_progress:  # the body began, or more of it came: a new deadline
            self.body_progress = False
            self._cancel_body_timer()
            self.body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_stalled)

    # --- the timers -------------------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        if self.header_timer is None:
            self.header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.transport.is_closing() or self.owed is not OWED_HEAD:
            return
        if self.head_bytes:
            message = f"request headers not received within {self.limits.header_timeout_s:g} s"
            self.transport.write(error_bytes(self._path(), _error(408, message)))
        self.transport.close()

    def _body_stalled(self) -> None:
        self.body_timer = None
        if self.transport.is_closing() or self.owed is not OWED_BODY:
            return
        # Not the client's stall while the server is not reading: flow control paused it, or the client
        # waits for the "100 Continue" that the app's first read sends.
        waiting_on_us = self.cycle is not None and self.cycle.waiting_for_100_continue
        if self.flow.read_paused or waiting_on_us:
            self.body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_stalled)
            return
        if self.cycle is not None and not self.cycle.response_started:
            message = f"request body stalled: nothing received for {self.limits.body_timeout_s:g} s"
            self.transport.write(error_bytes(self.scope["path"], _error(408, message)))
        self.transport.close()  # the app's receive() sees a disconnect

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _cancel_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()

    # --- protocol errors in the dialect's shape -----------------------------------------------------
    def _path(self) -> str:
        """The path of the request being received, as far as its URL arrived (``/`` before it did)."""
        return _path_of(b"GET " + (getattr(self, "url", None) or b"/") + b" ")

    def _refuse_head(self) -> None:
        self._cancel_timers()
        self.transport.write(error_bytes(self._path(), _error(431, f"request headers are larger than "
                                                                   f"{MAX_HEADER_BYTES} bytes")))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A request the parser refused (a malformed head, or bad body framing): a 400, then close; a URL past
        the head cap (``on_url`` stopped the parser): a 431."""
        if self.head_too_large:
            self._refuse_head()
            return
        self._cancel_timers()
        if self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete:
            self.transport.close()  # a response is already on the wire: nothing more can be said
            return
        path = self._path() if self.owed is OWED_HEAD else (self.scope or {}).get("path", "/")
        self.transport.write(error_bytes(path, _error(400, "malformed HTTP request")))
        self.transport.close()


def protocol_for(limits: EdgeLimits) -> type[GuardedProtocol]:
    """A protocol class carrying ``limits`` (uvicorn instantiates it once per connection)."""
    busy = error_bytes("/", ServiceBusy("server busy: too many open connections; retry shortly", retry_after_s=1))
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits, "busy": busy, "per_client": Counter()})


def edge_config(app: Any, settings: Settings, *, log_level: str, **ssl: Any) -> uvicorn.Config:
    """The ``uvicorn.Config`` that ``dreamreel serve`` runs: guarded protocol, raised file limit, and the
    repeat throttle on every log handler (installed after uvicorn configured its own handlers)."""
    open_files = raise_open_file_limit()
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        log.warning("max_connections lowered from %d to %d: the open-file limit is %d",
                    settings.max_connections, cap, open_files)
    limits = EdgeLimits(header_timeout_s=settings.header_timeout_seconds,
                        body_timeout_s=settings.body_timeout_seconds, max_connections=cap,
                        max_per_client=settings.max_connections_per_client)
    # log_config=None: uvicorn's records go to the root handler, in the process's format (core/logs.py).
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level, log_config=None,
                            http=protocol_for(limits), ws="none", **ssl)
    install(RepeatThrottle(settings.log_repeat_limit, settings.log_repeat_window_seconds))
    return config
