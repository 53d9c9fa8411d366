"""Turning validation failures into one-line messages that name the offending field."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from dreamreel.core.errors import InvalidRequest

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> InvalidRequest:
    """First error, phrased ``field: problem`` (clients show this line to people)."""
    parts = []
    first_field = None
    for error in exc.errors()[:3]:
        loc = ".".join(str(p) for p in error["loc"])
        field = loc or "body"
        first_field = first_field or field
        message = error["msg"]
        if error["type"] == "missing":
            message = "field required"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{field}: {message}")
    details = [
        {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]} for error in exc.errors()
    ]
    return InvalidRequest("Invalid request: " + "; ".join(parts), field=first_field, details=details)


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """Parse a JSON body strictly into a dialect's request model, raising ``InvalidRequest``."""
    def body_error(message: str, kind: str) -> InvalidRequest:
        detail = [{"loc": ["body"], "msg": message, "type": kind}]
        return InvalidRequest(f"Invalid request: body: {message}", field="body", details=detail)

    if not raw.strip():
        raise body_error("a JSON object is required", "missing")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise body_error(f"invalid JSON ({exc})", "json_invalid") from None
    except RecursionError:  # hostile nesting: the C scanner stops at the interpreter's recursion limit
        raise body_error("invalid JSON (nested too deeply)", "json_invalid") from None
    except ValueError:  # an integer past Python's int-string conversion limit (4300 digits)
        raise body_error("invalid JSON (a number has too many digits)", "json_invalid") from None
    if not isinstance(data, dict):
        raise body_error("a JSON object is required", "dict_type")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None
