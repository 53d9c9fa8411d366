"""What a dialect is to the rest of the server: one object per external API, registered in one place.

A dialect module parses its own request shapes and renders its own objects; everything the app and the
webhook dispatcher need from it is on its :class:`Dialect`, and what it creates carries its name and
``notify_on`` into the service and the store. Adding an API is a
new module exporting ``DIALECT`` plus one line in ``api/dialects/__init__.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from dreamreel.api.signing import WebhookSigner
from dreamreel.api.urls import FileUrls
from dreamreel.core.errors import DreamreelError
from dreamreel.core.generation import Generation, State

Notification = tuple[bytes, dict[str, str]]
"""A rendered webhook: the exact body bytes and the headers to send with them."""

CallbackRenderer = Callable[[Generation, FileUrls, WebhookSigner], Notification]
"""``(snapshot, the signer of asset URLs, webhook signer) -> notification`` for a generation this dialect created."""


@dataclass(frozen=True)
class Dialect:
    name: str
    """Stored with each generation it creates (``Generation.dialect``): picks the callback renderer."""
    router: APIRouter
    path_prefixes: tuple[str, ...]
    """Requests under these paths get this dialect's error shape (``render_error``)."""
    status_words: Mapping[State, str]
    """What this API calls each state (Luma ``dreaming``, fal ``IN_PROGRESS``, ...)."""
    render_error: Callable[[DreamreelError], JSONResponse]
    notify_on: frozenset[State] = frozenset()
    """Transitions that POST a generation's callback URL, if it has one (stored with the generation)."""
    render_callback: CallbackRenderer | None = None


def json_body(data: object) -> bytes:
    """Compact JSON, the bytes a webhook signs and sends."""
    return json.dumps(data, separators=(",", ":")).encode()
