"""Refusing browser cross-site requests that change state (POST, PUT, PATCH, DELETE).

A page on another site can make its visitor's browser send requests to this server; a keyless server on
the visitor's machine or LAN then acts on them as its one trusted user. Content types cannot stop it (a
form sends ``text/plain`` and multipart bodies without a preflight), and CORS only hides responses from the
page, it does not stop the request. Browsers do say where a request comes from; SDKs, curl and servers do
not send these headers, so their requests pass untouched:

- ``Sec-Fetch-Site: cross-site`` is refused; ``same-site`` (a sibling subdomain) is refused unless its
  ``Origin`` is this server's;
- an ``Origin`` whose ``scheme://host:port`` is not the configured public URL's is refused, whatever
  ``Sec-Fetch-Site`` says: after DNS rebinding a hostile page *is* same-origin to the browser, but its
  origin still names the hostile host. When the public URL is a loopback address, the other loopback
  spellings (``localhost``, ``127.0.0.1``, ``[::1]``) on the same scheme and port count as it.

The answer is a 403 in the called dialect's error shape; nothing behind this middleware runs. A pure ASGI
middleware so that the refusal comes before anything reads the body or counts against a key's limits.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dreamreel.core.errors import DreamreelError, Forbidden

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}

ErrorRenderer = Callable[[Request, DreamreelError], Response]
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """``(scheme, host, port)`` of an origin or URL, lower-cased with the default port filled in; ``None`` for
    anything that is not an http(s) origin (``null``, junk, a bad port)."""
    try:
        parts = urlsplit(value.strip())
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def allowed_origins(public_url: str) -> frozenset[Origin]:
    """The origins that are this server: the public URL's, plus its loopback aliases when it is loopback."""
    origin = parse_origin(public_url)
    if origin is None:
        return frozenset()
    scheme, host, port = origin
    if host in LOOPBACK_HOSTS:
        return frozenset((scheme, alias, port) for alias in LOOPBACK_HOSTS)
    return frozenset({origin})


def refusal(method: str, origin: str | None, fetch_site: str | None, allowed: frozenset[Origin]) -> str | None:
    """Why this request must be refused, or ``None`` to let it through."""
    if method not in STATE_CHANGING:
        return None
    site = (fetch_site or "").strip().lower()
    if site == "cross-site":
        return "cross-site browser requests may not change state on this server"
    if origin is not None and parse_origin(origin) not in allowed:
        return "requests from another origin may not change state on this server"
    if site == "same-site" and origin is None:
        return "same-site browser requests without an Origin may not change state on this server"
    return None


class CrossSiteGuard:
    def __init__(self, app: ASGIApp, *, public_url: str, render_error: ErrorRenderer) -> None:
        self.app = app
        self.allowed = allowed_origins(public_url)
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in STATE_CHANGING:
            request = Request(scope, receive)
            reason = refusal(scope["method"], request.headers.get("origin"),
                             request.headers.get("sec-fetch-site"), self.allowed)
            if reason is not None:
                await self.render_error(request, Forbidden(reason))(scope, receive, send)
                return
        await self.app(scope, receive, send)
