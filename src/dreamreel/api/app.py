"""Build the FastAPI app: dialect routers, files, health, and the error envelope per dialect."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from dreamreel import __version__
from dreamreel.api import admin, downloads, memory_guard, models, observe, uploads
from dreamreel.api.admission import AdmissionMiddleware
from dreamreel.api.deps import video_body_limit
from dreamreel.api.dialects import DIALECTS
from dreamreel.api.errors import describe_validation_error
from dreamreel.api.exposure import check_exposure
from dreamreel.api.fast_polls import FastPolls
from dreamreel.api.keyring import KeyRing
from dreamreel.api.metrics import ApiMetrics, HttpMetrics
from dreamreel.api.origin import CrossSiteGuard
from dreamreel.api.playground import add_playground
from dreamreel.api.request_ids import RequestIds
from dreamreel.api.schema import DetailError, Health, Jwks, add_shared_parts, error_responses
from dreamreel.api.server_secret import API_KEY_PEPPER, derive_key, load_server_secret
from dreamreel.api.signing import KeyFileError, WebhookSigner, load_key, load_or_create_key
from dreamreel.api.urls import FileUrls
from dreamreel.api.webhooks import WebhookDispatcher
from dreamreel.config import SettingError, Settings
from dreamreel.core.errors import DreamreelError, InvalidRequest, NotFound
from dreamreel.core.service import GenerationService
from dreamreel.files import LocalFiles
from dreamreel.store import open_store

log = logging.getLogger("dreamreel.api")

def render_error(request: Request, exc: DreamreelError) -> JSONResponse:
    """The error in the shape of the dialect whose path was called; elsewhere ``{"detail": ...}``."""
    response = next((dialect.render_error(exc) for dialect in DIALECTS
                     if request.url.path.startswith(dialect.path_prefixes)), None)
    if response is None:
        response = JSONResponse(status_code=exc.status_code, content={"detail": exc.message})
    retry_after_s = getattr(exc, "retry_after_s", None)  # 429, 503: when trying again can succeed
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    app = request.scope.get("app")  # absent for an error the server answers before the app (api/server.py)
    metrics = getattr(app.state, "metrics", None) if app is not None else None
    if metrics is not None:
        metrics.count_refusal(exc)
    return response


def webhook_signer(settings: Settings) -> WebhookSigner:
    """The provisioned key when ``webhook_signing_key_file`` is set (shared by every API node; an unusable
    file is a :class:`SettingError`, never replaced by a new key), else this node's own in ``<data_dir>/keys``."""
    path = settings.webhook_signing_key_file
    if path is None:
        return WebhookSigner(load_or_create_key(settings.data_dir / "keys" / "webhook-ed25519.pem"))
    try:
        return WebhookSigner(load_key(path))
    except KeyFileError as exc:
        raise SettingError(f"DREAMREEL_WEBHOOK_SIGNING_KEY_FILE (webhook_signing_key_file): {exc}") from exc


def create_app(settings: Settings, *, run_dispatcher: bool = True) -> FastAPI:
    signer = webhook_signer(settings)  # first: a bad key file stops startup before anything is opened
    store = open_store(settings.resolved_database_url)
    files = LocalFiles(settings.resolved_storage_dir)
    file_urls = FileUrls.from_settings(settings)  # signed asset URLs on the public URL, never the Host header
    dispatcher = WebhookDispatcher(store, settings, signer, file_urls)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = None
        if run_dispatcher:
            thread = threading.Thread(target=dispatcher.run_forever, name="webhooks", daemon=True)
            thread.start()
        yield
        dispatcher.stop_event.set()
        if thread is not None:
            thread.join(timeout=5)

    app = FastAPI(title="dreamreel", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    catalog = settings.catalog()
    app.state.catalog = catalog
    app.state.service = GenerationService(store, files, families=catalog.families,
                                          allow_private_urls=settings.allow_private_urls,
                                          upload_video_facts=uploads.upload_video_facts(files),
                                          adapters=catalog.adapters,
                                          memory_check=memory_guard.memory_check(catalog))
    app.state.files = files
    app.state.file_urls = file_urls
    keyring = KeyRing(store, derive_key(load_server_secret(settings), API_KEY_PEPPER), settings.api_keys,
                      settings.key_cache_seconds)
    check_exposure(settings, keyring)
    app.state.keyring = keyring
    app.add_middleware(AdmissionMiddleware, keyring=keyring, store=store, storage_dir=settings.resolved_storage_dir,
                       min_free_bytes=settings.min_free_disk_bytes, max_body_bytes=settings.max_body_bytes,
                       video_body_bytes=video_body_limit(settings), render_error=render_error)
    # A cross-site browser POST is refused before admission reads or counts it.
    app.add_middleware(CrossSiteGuard, public_url=settings.resolved_public_url, render_error=render_error)
    # Outermost (added last): status polls skip the rest when they can (api/fast_polls.py); both guards above
    # act on POSTs alone.
    app.add_middleware(FastPolls, routers=[dialect.router for dialect in DIALECTS], keyring=keyring)
    # Outside even the fast path, so every request is counted and timed by the route that answered it.
    metrics = ApiMetrics(store, settings.lease_seconds, per_key=settings.metrics_per_key)
    app.state.metrics = metrics
    app.state.service.on_submitted = metrics.count_submission
    app.state.service.on_stopped = metrics.count_stop
    dispatcher.on_outcome = lambda outcome: metrics.webhooks.labels(outcome).inc()
    app.add_middleware(RequestIds)  # an id for every request's log lines, answered as X-Request-Id
    app.add_middleware(HttpMetrics, metrics=metrics)

    @app.exception_handler(DreamreelError)
    async def _dreamreel_error(request: Request, exc: DreamreelError) -> JSONResponse:
        return render_error(request, exc)

    @app.exception_handler(ValidationError)
    async def _model_error(request: Request, exc: ValidationError) -> JSONResponse:
        """A core type refusing a value a dialect let through (e.g. a blank prompt)."""
        return render_error(request, describe_validation_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        field = ".".join(str(p) for p in first["loc"] if p not in ("query", "path", "body"))
        return render_error(request, InvalidRequest(f"Invalid request: {field}: {first['msg']}", field=field))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = NotFound("not found") if exc.status_code == 404 else DreamreelError(str(exc.detail))
        error.status_code = exc.status_code
        return render_error(request, error)

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect) -> Response:
        """The client hung up mid-body (or the edge closed its stalled body, api/server.py): no one to answer,
        and nothing went wrong here, so nothing to log."""
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return render_error(request, DreamreelError("internal error"))

    @app.get("/healthz", tags=["health"], response_model=Health, responses=error_responses(DetailError))
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/.well-known/jwks.json", tags=["webhooks"], response_model=Jwks, responses=error_responses(DetailError))
    def jwks() -> dict[str, list[dict[str, str]]]:
        """Public key(s) that verify this server's signed (fal-style) webhooks."""
        return signer.jwks()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_shared_parts(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(downloads.router)
    app.include_router(uploads.router)
    app.include_router(admin.router)
    app.include_router(models.router)
    app.include_router(observe.router)
    add_playground(app, settings.resolved_public_url)
    for dialect in DIALECTS:  # in registry order: fal's generic /{owner}/{alias}/... routes come last
        app.include_router(dialect.router)
    return app
