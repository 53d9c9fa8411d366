"""Operator routes for machines: ``GET /readyz`` (may a load balancer send this API process traffic?) and
``GET /metrics`` (Prometheus; api/metrics.py). ``GET /healthz`` (is the process alive?) is the app's own.

Readiness is this process's ability to serve, not the cluster's: the store answers a read and the storage
directory takes a write. It does not ask for a worker: polls, lists and downloads are served without one, and a
queued job waits for whichever worker comes (docs/operations.md has the capacity alerts for that).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dreamreel.api.deps import AppSettings
from dreamreel.api.metrics import check_reader
from dreamreel.api.schema import DetailError, Readiness, error_responses
from dreamreel.core.errors import ServiceBusy

router = APIRouter(tags=["health"])

READY_RETRY_AFTER_S = 5


def _check_ready(request: Request, settings: Any) -> dict[str, str]:
    store = request.app.state.service.store
    try:
        store.outbox_backlog()  # any read: the store answers
    except Exception as exc:  # noqa: BLE001  (whatever the driver raises, the answer is "not ready")
        raise ServiceBusy(f"not ready: the store does not answer ({type(exc).__name__})",
                          retry_after_s=READY_RETRY_AFTER_S) from None
    probe = settings.resolved_storage_dir / f".readyz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ServiceBusy(f"not ready: the storage directory is not writable ({exc.strerror or exc})",
                          retry_after_s=READY_RETRY_AFTER_S) from None
    return {"status": "ready", "store": "ok", "storage": "ok"}


@router.get("/readyz", response_model=Readiness, responses=error_responses(DetailError))
async def readyz(request: Request, settings: AppSettings) -> dict[str, str]:
    """200 while this process can serve (the store answers, the storage directory is writable), else 503."""
    return await run_in_threadpool(_check_ready, request, settings)


@router.get("/metrics", response_class=Response, responses={
    200: {"description": "Prometheus text exposition format", "content": {CONTENT_TYPE_LATEST: {
        "schema": {"type": "string"}}}},
    **error_responses(DetailError),
})
async def metrics(request: Request, settings: AppSettings) -> Response:
    """The cluster's queue and workers (from the store) and this process's HTTP traffic, for the admin token, an
    admin key or an address in ``metrics_allow_from``."""
    client = request.client.host if request.client else None
    await run_in_threadpool(check_reader, request.headers, client, settings, request.app.state.keyring)
    body = await run_in_threadpool(generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
