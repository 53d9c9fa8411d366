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
    return InvalidRequest("Invalid request: " + "; ".join(parts), field=first_field)


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """Parse a JSON body strictly into a dialect's request model, raising ``InvalidRequest``."""
    if not raw.strip():
        raise InvalidRequest("Invalid request: body: a JSON object is required", field="body")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Invalid request: body: invalid JSON ({exc})", field="body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("Invalid request: body: a JSON object is required", field="body")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None
