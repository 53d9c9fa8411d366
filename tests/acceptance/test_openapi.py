"""The OpenAPI document describes every route, and no generated request of any shape gets a 500 or a body
that breaks it.

- The document (in process): every route of the app is a documented operation, and every response it
  documents says what its body is (a schema that names fields, or a binary media type).
- A property-based run: schemathesis generates requests, valid and invalid, from that document for every
  operation and sends them over HTTP to a real ``dreamreel serve`` on loopback (no workers, so what it creates
  just queues; its ``/openapi.json`` is checked to be this same document), checking that none is answered with
  a 5xx and that every answer matches the documented status and schema. ``DREAMREEL_FUZZ_EXAMPLES`` and
  ``DREAMREEL_FUZZ_SEED`` make the run longer or different (docs/security.md).

The document is built when the module is imported: schemathesis makes one test per operation at collection,
before any fixture (a server) exists. (Its fixture-based loader, ``schemathesis.pytest.from_fixture``, does not
run under pytest 9.2.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from tests.conftest import ServerProcess

from dreamreel.api.app import create_app
from dreamreel.api.playground import ASSETS_PATH, PAGE_PATH
from dreamreel.config import DEFAULT_MODEL_DIR, Settings

FUZZ_EXAMPLES = int(os.environ.get("DREAMREEL_FUZZ_EXAMPLES", "6"))
"""Generated requests per operation in the fuzzing phase (on top of the coverage phase's boundary cases)."""
FUZZ_SEED = int(os.environ.get("DREAMREEL_FUZZ_SEED", "26"))
"""Fixed by default so ``make test`` is repeatable; set another for a different hunt."""

SYNC_RUN = "/fal-run/fal-ai/luma-dream-machine/{endpoint}"
SINK = "http://127.0.0.1:9/hook"
"""Where generated callback URLs are pointed: the discard port on loopback, closed, so nothing leaves the
machine (callbacks fire when a fal request is cancelled or passes its start deadline)."""


def build_app() -> tuple[FastAPI, dict]:
    """The app and its OpenAPI document, as ``dreamreel serve`` builds them (on a scratch data dir)."""
    with tempfile.TemporaryDirectory(prefix="dreamreel-openapi-") as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir)), run_dispatcher=False)
        return app, app.openapi()


APP, DOCUMENT = build_app()


# --- the document ----------------------------------------------------------------------------------


def resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def describes_a_body(schema: dict, document: dict) -> bool:
    """A schema that says something: an object with named fields, an array of described items, a union of
    described alternatives, or a typed scalar. ``{}`` and a free-form ``{"type": "object"}`` do not count."""
    schema = resolve(schema, document)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return all(describes_a_body(alt, document) for alt in alternatives)
    kind = schema.get("type")
    if kind == "object":
        return bool(schema.get("properties"))
    if kind == "array":
        return describes_a_body(schema.get("items", {}), document)
    return kind in ("string", "integer", "number", "boolean", "null") or "const" in schema or "enum" in schema


def app_routes(routes: list, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(full path, route)`` for every route the app serves, routers included into it opened up (FastAPI keeps
    an included router as one entry of ``app.routes`` that holds the router)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from app_routes(included.routes, prefix + getattr(route.include_context, "prefix", ""))
        else:
            yield prefix + route.path_format, route


def test_every_route_is_a_documented_operation_with_described_bodies() -> None:
    app, document = APP, DOCUMENT
    docs_routes = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    operations = 0
    for path, route in app_routes(app.routes):
        if path == PAGE_PATH or path.startswith(ASSETS_PATH + "/"):  # the playground: a page, not API operations
            continue
        if not isinstance(route, APIRoute):
            assert path in docs_routes, f"{path} is not an API route: it would be undocumented"
            continue
        assert route.include_in_schema, f"{path} is hidden from the OpenAPI document"
        for method in route.methods:
            label = f"{method} {path}"
            operation = document["paths"].get(path, {}).get(method.lower())
            assert operation is not None, f"{label} is not in the OpenAPI document"
            operations += 1
            responses = operation["responses"]
            assert any(str(status).startswith("2") for status in responses), f"{label}: no success response"
            assert any(str(status).startswith("4") for status in responses), f"{label}: no error response"
            for status, response in responses.items():
                content = response.get("content", {})
                if status in ("204", "304"):
                    assert not content, f"{label} {status} must have no body"
                    continue
                assert content, f"{label} {status}: the body is not described"
                for media_type, body in content.items():
                    schema = body.get("schema", {})
                    if media_type == "application/json":
                        assert describes_a_body(schema, document), f"{label} {status}: empty schema {schema}"
                    else:
                        assert schema.get("type") == "string", f"{label} {status} {media_type}: {schema}"
            if method == "POST":
                body = operation.get("requestBody", {})
                assert body.get("content"), f"{label}: the request body is not documented"
    assert operations >= 20


def test_request_bodies_are_the_parsed_models() -> None:
    """The documented request body is what the route parses: a field it refuses is not in the document."""
    document = DOCUMENT
    luma = document["paths"]["/dream-machine/v1/generations"]["post"]["requestBody"]["content"]
    schema = luma["application/json"]["schema"]
    assert schema["required"] == ["prompt"] and schema["additionalProperties"] is False
    assert {"prompt", "aspect_ratio", "keyframes", "concepts", "callback_url"} <= set(schema["properties"])
    assert "$defs" not in str(schema), "references into the model's own $defs do not resolve in the document"
    upload = document["paths"]["/uploads"]["post"]["requestBody"]["content"]
    assert upload["image/png"]["schema"] == {"type": "string", "format": "binary"}
    endpoint = next(p for p in document["paths"]["/fal-ai/luma-dream-machine/{endpoint}"]["post"]["parameters"]
                    if p["name"] == "endpoint")
    assert "ray-2/image-to-video" in endpoint["schema"]["enum"]


# --- the property-based run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server under the run. Afterwards: still healthy, its log free of tracebacks, and its queue holding
    what was valid (schemathesis generated bodies the routes accept, not only ones they refuse)."""
    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", DEFAULT_MODEL_DIR, workers=0,
                           extra_env={"DREAMREEL_POLL_SECONDS": "0.05"}).start()
    yield server
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        listed = httpx.get(f"{server.url}/dream-machine/v1/generations", params={"limit": 1}, timeout=10)
        assert listed.status_code == 200 and listed.json()["has_more"], listed.text
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


schemathesis.serializer.alias("image/bmp", "application/octet-stream")  # an upload is its bytes, whatever they are
for _video_type in ("video/mp4", "video/quicktime", "video/webm"):
    schemathesis.serializer.alias(_video_type, "application/octet-stream")
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict({
    "seed": FUZZ_SEED,
    "request-timeout": 10,
    "suppress-health-check": ["all"],
    "generation": {"max-examples": FUZZ_EXAMPLES, "database": "none", "deterministic": True},
    "phases": {"stateful": {"enabled": False}},
}))


def test_the_server_serves_this_document(fuzz_server: ServerProcess) -> None:
    assert httpx.get(f"{fuzz_server.url}/openapi.json", timeout=10).json() == DOCUMENT


def keep_on_loopback(case: schemathesis.Case) -> None:
    """Point generated callback URLs at a closed loopback port, and give the sync run a short start deadline
    (with no workers it would otherwise wait its full 30 minutes for a job that never starts)."""
    if isinstance(case.query, dict) and isinstance(case.query.get("fal_webhook"), str):
        case.query["fal_webhook"] = SINK
    if isinstance(case.body, dict) and isinstance(case.body.get("callback_url"), str):
        case.body["callback_url"] = SINK
    if case.operation.path == SYNC_RUN:
        case.headers = {**(case.headers or {}), "X-Fal-Request-Timeout": "0.05"}


@SCHEMA.parametrize()
def test_no_request_gets_a_server_error_or_breaks_the_document(
    case: schemathesis.Case, fuzz_server: ServerProcess
) -> None:
    keep_on_loopback(case)
    response = case.call(base_url=fuzz_server.url)
    checks = [response_schema_conformance, status_code_conformance]
    if case.operation.path == SYNC_RUN and response.status_code == 504:
        # The job passed the start deadline this test gave it: fal's own answer, not a server error.
        assert response.json()["error_type"] == "request_timeout", response.text
    else:
        checks.append(not_a_server_error)
    case.validate_response(response, checks=checks)


def test_every_dialects_create_bodies_document_the_extension_fields() -> None:
    """``seed``, ``negative_prompt``, ``loras`` and ``speed`` (``api/extensions.py``) in each dialect's create bodies,
    the speed presets as an enum, and the
    ``seed`` a generation used in each dialect's generation object."""
    document = DOCUMENT
    bodies = {
        "luma": ("/dream-machine/v1/generations", "application/json"),
        "luma modify": ("/dream-machine/v1/generations/video/modify", "application/json"),
        "aiml": ("/v2/video/generations", "application/json"),
        "openai": ("/v1/videos", "application/json"),
        "openai form": ("/v1/videos", "multipart/form-data"),  # a form's fields are text: no adapter list
    }
    for label, (path, media_type) in bodies.items():
        schema = resolve(document["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"], document)
        fields = {"seed", "negative_prompt", "speed"} | ({"loras"} if media_type == "application/json" else set())
        assert fields <= set(schema["properties"]), label
        assert speed_choices(schema["properties"]["speed"], document) == {"quality", "balanced", "fast"}, label
    fal = document["paths"]["/fal-ai/luma-dream-machine/{endpoint}"]["post"]["requestBody"]["content"]
    for alternative in fal["application/json"]["schema"]["anyOf"]:
        assert {"seed", "negative_prompt", "loras", "speed"} <= set(resolve(alternative, document)["properties"])
    for name in ("LumaGeneration", "VideoOut", "AimlGeneration", "FalVideoResult"):
        assert "seed" in document["components"]["schemas"][name]["properties"], name


def speed_choices(schema: dict, document: dict) -> set[str]:
    """The values a ``speed`` property allows (an enum, possibly inside an ``anyOf`` with null)."""
    schema = resolve(schema, document)
    options = [resolve(option, document) for option in schema.get("anyOf", [schema])]
    return {value for option in options for value in option.get("enum", [])}
