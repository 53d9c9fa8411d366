"""Status polls answered without FastAPI's routing and dependency solving.

A client waiting for a clip polls its status every 50 ms to 5 s, so polls are nearly all of an API process's
requests. Through the full app a poll cost about 0.35 ms of CPU here (docs/benchmarks.md, "The API under
load"), most of it generic: matching the path against every route of four dialects, solving the route's
dependencies, and five ASGI layers that each wrap ``send``; the store read and the render are the smaller part.

How: a poll route marks its endpoint with :func:`fast_poll` beside its FastAPI decorator. This middleware,
outermost, answers a ``GET`` whose path matches a marked route (by the route's own compiled path regex), whose
query holds only the parameters the mark names (each 1 to its length cap long), and whose caller the key cache
knows, by calling that endpoint with what FastAPI would have injected: ``request``, the path parameters, the
query parameters, ``service`` and ``owner``. Everything else goes on to the full app, which answers as it
always has: a key the cache must re-read, an unknown or odd query, and any error the endpoint raises (a
missing id, a wrong owner, a bad path segment) — poll errors, their validation and their shapes keep one
implementation, and running a GET twice changes nothing. The same endpoint function renders both ways, so the
answers are the same bytes (tests/acceptance/test_fast_polls.py compares them).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dreamreel.api.keyring import KeyRing

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class PollMark:
    query: Mapping[str, int]
    """Query parameters the fast path passes on, each with its longest accepted value."""


def fast_poll(query: Mapping[str, int] | None = None) -> Callable[[Endpoint], Endpoint]:
    """Mark an ``async`` GET endpoint for the fast path; ``query``: its query parameters and their length caps
    (the route's own ``Query`` constraints, or tighter: a value outside them goes the full way)."""
    mark = PollMark(MappingProxyType(dict(query or {})))

    def marked(endpoint: Endpoint) -> Endpoint:
        endpoint.__dict__["fast_poll"] = mark
        return endpoint

    return marked


@dataclass(frozen=True)
class _Route:
    path: re.Pattern[str]
    endpoint: Callable[..., Awaitable[Any]]
    mark: PollMark
    takes: frozenset[str]
    """The endpoint's parameter names (only those are passed)."""
    route: APIRoute
    """Put in the scope as Starlette's routing would (what request metrics label by)."""


class FastPolls:
    """Pure ASGI middleware: the fast path for routes marked with :func:`fast_poll` (module docstring)."""

    def __init__(self, app: ASGIApp, *, routers: list[APIRouter], keyring: KeyRing) -> None:
        self.app = app
        self.table = [_Route(route.path_regex, route.endpoint, mark, _parameters(route.endpoint), route)
                      for router in routers for route in router.routes
                      if isinstance(route, APIRoute) and "GET" in route.methods
                      and (mark := route.endpoint.__dict__.get("fast_poll")) is not None]
        """The marked routes of ``routers``, which the app includes at its root (their paths are the full paths)."""
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for route in self.table:
            match = route.path.match(path)
            if match is not None:
                response = await self._answer(route, match.groupdict(), scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)

    async def _answer(self, route: _Route, params: dict[str, str], scope: Scope) -> Any:
        """The endpoint's response, or None when this request must go the full way."""
        query = _query(scope["query_string"], route.mark.query)
        if query is None:
            return None
        request = Request(scope)
        try:
            caller = self.keyring.resolve_cached(request.headers.get("authorization"))
        except Exception:  # noqa: BLE001  (refused: the full app answers it in its dialect's shape)
            return None
        if caller is None:  # the cache must read the store again: the full app does, in the read pool
            return None
        scope["route"] = route.route
        offered = {"request": request, "service": request.app.state.service, "owner": caller.owner,
                   **params, **query}
        try:
            return await route.endpoint(**{name: value for name, value in offered.items() if name in route.takes})
        except Exception:  # noqa: BLE001  (an error the full app renders, the one way errors are rendered)
            return None


def _parameters(endpoint: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(endpoint).parameters)


def _query(raw: bytes, accepted: Mapping[str, int]) -> dict[str, str] | None:
    """The query as keyword arguments when every parameter is accepted, once, within its length cap."""
    if not raw:
        return {}
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    values = dict(pairs)
    if len(values) != len(pairs):
        return None
    for name, value in values.items():
        cap = accepted.get(name)
        if cap is None or not 1 <= len(value) <= cap:
            return None
    return values
