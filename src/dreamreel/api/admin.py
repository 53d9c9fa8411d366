"""Operator routes: ``GET /admin/workers`` (every worker that announced itself to the store, and whether it is
alive).

Guarded by ``admin_token`` (``DREAMREEL_ADMIN_TOKEN``), sent as ``Authorization: Bearer <token>`` and compared
in constant time, or by a key issued with ``dreamreel keys create --admin``; a missing or wrong token is a
401. Without the setting the routes answer 404, as if they did
not exist: there is no loopback exception, since behind a reverse proxy every caller looks local. Errors use
``{"detail": ...}``.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dreamreel.api.deps import AppSettings, Service
from dreamreel.api.keyring import KeyRing
from dreamreel.api.schema import DetailError, WorkerList, error_responses
from dreamreel.config import Settings
from dreamreel.core.errors import NotFound, Unauthorized

router = APIRouter(prefix="/admin", tags=["admin"])


def is_operator(header: str, settings: Settings, keyring: KeyRing) -> bool:
    """Whether an ``Authorization`` header carries the admin token (compared in constant time) or a key issued
    with ``--admin``: who may call the operator routes and read ``/metrics``."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if settings.admin_token and scheme.lower() == "bearer" and token.isascii() and hmac.compare_digest(
        token.encode(), settings.admin_token.encode()
    ):
        return True
    try:
        return keyring.resolve(header).admin
    except Unauthorized:
        return False


def require_admin(request: Request, settings: AppSettings) -> None:
    """Let through the configured admin token or a key issued with ``--admin``. Anyone else gets a 401 when an
    admin token is configured, else a 404: without one the routes look absent to all but admin keys."""
    if is_operator(request.headers.get("authorization", ""), settings, request.app.state.keyring):
        return
    if not settings.admin_token:
        raise NotFound("not found")
    raise Unauthorized("missing or invalid admin token (send Authorization: Bearer <admin token or admin key>)")


Admin = Annotated[None, Depends(require_admin)]


@router.get("/workers", response_model=WorkerList, responses=error_responses(DetailError))
def list_workers(_: Admin, service: Service, settings: AppSettings) -> dict[str, Any]:
    """Every announced worker, newest heartbeat first; ``alive``: seen within ``lease_seconds``."""
    workers = service.store.list_workers()
    now = time.time()
    return {
        "workers": [
            {
                "worker_id": w.worker_id,
                "host": w.host,
                "pid": w.pid,
                "device": w.device,
                "models": list(w.models),
                "current_job": w.current_job,
                "started_at": w.started_at,
                "last_seen": w.last_seen,
                "alive": now - w.last_seen <= settings.lease_seconds,
            }
            for w in workers
        ]
    }
