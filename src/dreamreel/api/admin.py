"""Operator routes: ``GET /admin/workers`` (every worker that announced itself to the store, and whether it is
alive).

Guarded by ``admin_token`` (``DREAMREEL_ADMIN_TOKEN``), sent as ``Authorization: Bearer <token>`` and compared
in constant time; a missing or wrong token is a 401. Without the setting the routes answer 404, as if they did
not exist: there is no loopback exception, since behind a reverse proxy every caller looks local. Errors use
``{"detail": ...}``.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dreamreel.api.deps import AppSettings, Service
from dreamreel.api.schema import DetailError, WorkerList, error_responses
from dreamreel.core.errors import NotFound, Unauthorized

router = APIRouter(prefix="/admin", tags=["admin"])


def require_admin(request: Request, settings: AppSettings) -> None:
    """404 when no admin token is configured; 401 unless the request carries it as a bearer token."""
    if not settings.admin_token:
        raise NotFound("not found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
        raise Unauthorized("missing or invalid admin token (send Authorization: Bearer <admin token>)")


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
