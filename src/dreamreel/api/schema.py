"""What the OpenAPI document says that FastAPI cannot see: raw request bodies, error shapes, media.

Creating routes read the raw body and parse it themselves (``api/errors.parse_body``: their own size cap,
strict types, messages that name the field), and errors are rendered in each dialect's shape by
``app.render_error``; FastAPI would document neither. The helpers here put the real request schema
(``openapi_extra``) and the real error bodies (``responses=``) on each route, so ``/openapi.json`` describes
what goes over the wire: a client generator can trust it, and ``tests/acceptance/test_openapi.py`` runs
schemathesis against it.

The response models (here for the routes outside a dialect, in ``dialects/*_schema.py`` for the dialects)
forbid unknown keys: a key that a renderer adds without a field here fails response validation (a 500 that the
tests catch), instead of the document and the wire silently drifting apart. Their fields are declared in the
order the renderers write them, so validating a rendered dict changes nothing in the bytes sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

JSON = "application/json"


class ResponseModel(BaseModel):
    """Base of every documented response object: exactly the keys the route writes."""

    model_config = ConfigDict(extra="forbid")


# --- request bodies --------------------------------------------------------------------------------


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``Model.model_json_schema()`` with its ``$defs`` substituted where they are referenced.

    An operation's ``requestBody`` cannot point into the model's own ``$defs`` (the document has no such
    section). ``discriminator`` hints are dropped with them: their ``mapping`` names ``$defs`` entries, and the
    ``oneOf`` they annotate says the same thing. The request models are not recursive.
    """
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = resolve(defs[ref.removeprefix("#/$defs/")])
            return {**target, **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
        return {k: resolve(v) for k, v in node.items() if k not in ("$defs", "discriminator")}

    return resolve(schema)


def json_request_body(*models: type[BaseModel], required: bool = True, description: str | None = None) -> dict:
    """``openapi_extra`` for a route that parses its JSON body itself: the body is one of ``models``."""
    schemas = [inline_defs(model.model_json_schema()) for model in models]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    body: dict[str, Any] = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def binary_request_body(media_types: tuple[str, ...], description: str) -> dict:
    """``openapi_extra`` for a route whose body is raw bytes of one of ``media_types``."""
    content = {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types}
    return {"requestBody": {"required": True, "description": description, "content": content}}


# --- responses -------------------------------------------------------------------------------------

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}


def error_responses(shape: Any, *extra: int) -> dict[int | str, dict[str, Any]]:
    """The documented failures of a route whose errors are ``shape``: any 4xx (401 no key, 404 not yours or
    absent, 413, 422 a field, ...), 429 (a per-key limit) and 503 (overloaded, store down) with
    ``Retry-After``, and ``extra`` statuses (e.g. fal's 500/504 for a request that failed)."""
    responses: dict[int | str, dict[str, Any]] = {
        "4XX": {"model": shape, "description": "The request was refused; `detail`/`message` says why."},
        429: {"model": shape, "description": "A per-key limit was reached.", "headers": RETRY_AFTER},
        503: {"model": shape, "description": "Overloaded or the store is unavailable.", "headers": RETRY_AFTER},
    }
    for status in extra:
        responses[status] = {"model": shape, "description": "The request's generation failed."}
    return responses


def file_responses(media_types: tuple[str, ...]) -> dict[int | str, dict[str, Any]]:
    """A file download: 200 (206 for a Range) whose body is one of ``media_types``, 304 for a matching ETag,
    Starlette's plain-text 400/416 for a malformed or unsatisfiable Range, ``{"detail"}`` otherwise."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {media_type: binary for media_type in media_types}
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        **error_responses(DetailError),
        200: {"description": "The file.", "content": content},
        206: {"description": "The requested byte range(s).", "content": {**content, "multipart/byteranges": binary}},
        304: {"description": "Not modified (`If-None-Match` matched the ETag)."},
        400: {"description": "A malformed Range header.", "content": text},
        416: {"description": "The Range is outside the file.", "content": text},
    }


IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "application/octet-stream")
"""What ``POST /uploads`` takes: the image's bytes as they are (the type is read from the bytes, not the header)."""


class DetailError(ResponseModel):
    """``{"detail": "<message>"}``: the error body of every route outside a dialect (and of Luma's)."""

    detail: str


class Health(ResponseModel):
    status: str
    version: str


class Readiness(ResponseModel):
    status: str
    """``ready``; a process that is not answers 503 with ``{"detail": ...}`` naming what failed."""
    store: str
    storage: str


class Jwk(ResponseModel):
    """An Ed25519 public key (RFC 8037) that verifies this server's signed webhooks."""

    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class Jwks(ResponseModel):
    keys: list[Jwk]


class WorkerOut(ResponseModel):
    worker_id: str
    host: str
    pid: int
    device: str
    models: list[str]
    current_job: str | None
    started_at: float
    last_seen: float
    alive: bool
    """Seen within ``lease_seconds``."""


class WorkerList(ResponseModel):
    workers: list[WorkerOut]


# --- what every operation shares -------------------------------------------------------------------

IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry safe: the same key and body within 24 h return the first response and create "
                   "nothing (api/admission.py); the same key with another body is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API key (`dreamreel keys create`): Luma, AI/ML, OpenAI. Not needed on a "
                              "keyless server."},
    "falKey": {"type": "apiKey", "in": "header", "name": "Authorization",
               "description": "fal's form of the same key: `Key <key>`."},
}


def add_shared_parts(document: dict[str, Any]) -> dict[str, Any]:
    """Document what the middleware and the key ring read on every route: ``Authorization`` (either form)
    and, on every POST (each one creates work), ``Idempotency-Key``."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"bearer": []}, {"falKey": []}, {}]
    for path_item in document.get("paths", {}).values():
        post = path_item.get("post")
        if post is not None:
            post.setdefault("parameters", []).append(IDEMPOTENCY_HEADER)
    return document
