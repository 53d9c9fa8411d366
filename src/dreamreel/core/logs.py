"""How every dreamreel process logs: human text on a terminal by default, one JSON object per line with
``DREAMREEL_LOG_FORMAT=json`` (for a log shipper), and never a secret either way.

A JSON line carries ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the ``request_id`` of the HTTP
request being served (``X-Request-Id``, api/request_ids.py) or of the request that created the generation a
worker or the webhook dispatcher is handling (:func:`generation_context`), that ``generation_id``, any of
:data:`CONTEXT_FIELDS` a log call passes in ``extra``, and ``error`` (the traceback) for an exception.

Secrets are scrubbed from every message, text or JSON (:func:`scrub`): bearer and key tokens, URL signatures and
``data:`` URIs (an inlined image is a payload, not a log line). Code should not log them in the first place;
this is the net under it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOG_FORMAT_ENV = "DREAMREEL_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("generation_id", "dialect", "model", "stage", "duration_s", "worker_id", "status", "route")
"""``extra`` keys a JSON line carries when a log call gives them."""

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dreamreel_request_id", default=None)
"""The id of the HTTP request this task serves (set by api/request_ids.py), or of the one that created the
generation this thread is working on (:func:`generation_context`)."""
generation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dreamreel_generation_id", default=None)
"""The generation this thread is working on (a worker's job, a webhook delivery)."""

_SECRETS = [
    (re.compile(r"(?i)\b(bearer|key)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 [redacted]"),
    (re.compile(r"(?i)([?&]sig=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]{16,}"), "data:[redacted]"),
]


def scrub(text: str) -> str:
    """``text`` with tokens after ``Bearer``/``Key``, URL signatures and ``data:`` payloads replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _Scrubbed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        current = request_id.get()
        if current:
            line["request_id"] = current
        working_on = generation_id.get()
        if working_on:
            line["generation_id"] = working_on
        for field in CONTEXT_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def job_fields(generation: Any, stage: str, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a log line about one generation at one stage: its id, dialect and model, the stage and
    whatever else the line reports (``duration_s``, ``status``)."""
    return {"generation_id": generation.id, "dialect": generation.dialect, "model": generation.model,
            "stage": stage, **more}


@contextmanager
def generation_context(generation: Any) -> Iterator[None]:
    """While the block runs, this thread's log lines carry ``generation``'s id and the request id it was created
    with (a worker running it, the dispatcher delivering its callback)."""
    tokens = (request_id.set(generation.request_id), generation_id.set(generation.id))
    try:
        yield
    finally:
        generation_id.reset(tokens[1])
        request_id.reset(tokens[0])


def log_format() -> str:
    """``json`` or ``text`` (the default; anything else is refused rather than silently ignored)."""
    chosen = os.environ.get(LOG_FORMAT_ENV, "text").strip().lower() or "text"
    if chosen not in ("json", "text"):
        raise ValueError(f"{LOG_FORMAT_ENV} must be json or text, got {chosen!r}")
    return chosen


def setup_logging(level: int = logging.INFO) -> None:
    """The root handler in the chosen format; uvicorn's loggers hand their records to it."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format() == "json" else _Scrubbed(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
