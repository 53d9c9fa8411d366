"""The OpenAPI document describes every route, and no generated request of any shape gets a 500 or a body
that breaks it.

Two parts:

- the document itself (in process, no server): every route of the app is a documented operation, and every
  response it documents says what its body is (a schema that names fields, or a binary media type);
- a property-based run: schemathesis reads ``/openapi.json`` from a real ``dreamreel serve`` on loopback (no
  workers, so what it creates just queues) and, for every operation, sends generated requests, valid and
  invalid, checking that none is answered with a 5xx and that every answer matches the documented schema
  (status, body). ``DREAMREEL_FUZZ_EXAMPLES`` / ``DREAMREEL_FUZZ_SEED`` make the run longer or different
  (docs/security.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from tests.conftest import ServerProcess

from dreamreel.api.app import create_app
from dreamreel.config import DEFAULT_MODEL_DIR, Settings

FUZZ_EXAMPLES = int(os.environ.get("DREAMREEL_FUZZ_EXAMPLES", "6"))
"""Generated requests per operation in the fuzzing phase (on top of the coverage phase's boundary cases)."""
FUZZ_SEED = int(os.environ.get("DREAMREEL_FUZZ_SEED", "26"))
"""Fixed by default so ``make test`` is repeatable; set another (or a random one) for a longer hunt."""

SYNC_RUN = "/fal-run/fal-ai/luma-dream-machine/{endpoint}"
SINK = "http://127.0.0.1:9/hook"
"""Where generated callback URLs are pointed: the discard port on loopback, closed, so nothing leaves the
machine (callbacks fire when a fal request is cancelled or passes its start deadline)."""


# --- the document ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_document(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")), run_dispatcher=False)
    return app, app.openapi()


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


def test_every_route_is_a_documented_operation_with_described_bodies(app_document: tuple[Any, dict]) -> None:
    app, document = app_document
    docs_routes = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    operations = 0
    for route in app.routes:
        if not isinstance(route, APIRoute):
            assert route.path in docs_routes, f"{route.path} is not an API route: it would be undocumented"
            continue
        assert route.include_in_schema, f"{route.path} is hidden from the OpenAPI document"
        for method in route.methods:
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            assert operation is not None, f"{method} {route.path_format} is not in the OpenAPI document"
            operations += 1
            label = f"{method} {route.path_format}"
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
            if method in ("POST", "PUT") and route.path_format != "/dream-machine/v1/generations/{generation_id}/upscale":
                body = operation.get("requestBody", {})
                assert body.get("required"), f"{label}: the request body is not documented as required"
    assert operations >= 20


def test_request_bodies_are_the_parsed_models(app_document: tuple[Any, dict]) -> None:
    """The documented request body is what the route parses: a field it refuses is not in the document."""
    _, document = app_document
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
    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", DEFAULT_MODEL_DIR, workers=0).start()
    yield server
    server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict({
        "seed": FUZZ_SEED,
        "request-timeout": 10,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": FUZZ_EXAMPLES, "database": "none", "deterministic": True},
        "phases": {"stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json", config=config)


def keep_on_loopback(case: schemathesis.Case) -> None:
    """Point generated callback URLs at a closed loopback port, and give the sync run a short start deadline
    (with no workers it would otherwise wait its full 30 minutes for a job that never starts)."""
    if isinstance(case.query, dict) and isinstance(case.query.get("fal_webhook"), str):
        case.query["fal_webhook"] = SINK
    if isinstance(case.body, dict) and isinstance(case.body.get("callback_url"), str):
        case.body["callback_url"] = SINK
    if case.operation.path == SYNC_RUN:
        case.headers = {**(case.headers or {}), "X-Fal-Request-Timeout": "0.05"}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_no_request_gets_a_server_error_or_breaks_the_document(case: schemathesis.Case) -> None:
    keep_on_loopback(case)
    response = case.call()
    checks = [response_schema_conformance, status_code_conformance]
    if case.operation.path == SYNC_RUN and response.status_code == 504:
        # The job passed the start deadline this test gave it: fal's own answer, not a server error.
        assert response.json()["error_type"] == "request_timeout", response.text
    else:
        checks.append(not_a_server_error)
    case.validate_response(response, checks=checks)


def test_the_fuzzed_server_still_serves(fuzz_server: ServerProcess) -> None:
    """After every generated request: the server is up and its queue took what was valid."""
    import httpx

    assert httpx.get(f"{fuzz_server.url}/healthz", timeout=10).status_code == 200
    listed = httpx.get(f"{fuzz_server.url}/dream-machine/v1/generations", params={"limit": 1}, timeout=10)
    assert listed.status_code == 200 and listed.json()["count"] == 1, listed.text


_ = Path  # noqa: F841 - keep the import for fixtures' annotations readers
