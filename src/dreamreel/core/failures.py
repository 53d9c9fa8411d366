"""Why a generation ended without a video: a code dialects branch on, beside the human reason.

The reason is free text for people (it names the keyframe, the exception); the code is the contract.
A dialect maps codes onto its own error vocabulary (fal: ``image_load_error``, ``request_timeout``, ...)
without parsing the reason.
"""

from __future__ import annotations

from enum import StrEnum


class FailureCode(StrEnum):
    INPUT = "input"
    """An input the caller gave could not be used (an image that does not load, a source clip gone)."""
    REQUEST_TIMEOUT = "request_timeout"
    """The job was still queued when its start deadline passed (fal's ``X-Fal-Request-Timeout``)."""
    WORKER_LOST = "worker_lost"
    """Workers died holding the job ``MAX_ATTEMPTS`` times: a poison job is failed, not re-run forever."""
    CANCELLED = "cancelled"
    """The caller cancelled or deleted it (state ``cancelled``)."""
    INTERNAL = "internal"
    """The generation raised: a fault of the server or the model, not of the request."""
    OUT_OF_MEMORY = "out_of_memory"
    """An allocation failed while the job ran (host or GPU memory): the job is too large for this worker now."""
    TIME_LIMIT = "time_limit"
    """The job ran past its wall-clock limit (derived from its size and model, ``worker/limits.py``)."""


CANCELLED_REASON = "cancelled by the caller"
REQUEST_TIMEOUT_REASON = "request timed out before it started"


def legacy_failure_code(state: str, reason: str | None) -> FailureCode | None:
    """The code of a record written before failure codes existed, read from its state and reason (the rules
    dialects applied to the reason text then)."""
    if state == "cancelled":
        return FailureCode.CANCELLED
    if state != "failed":
        return None
    if reason == REQUEST_TIMEOUT_REASON:
        return FailureCode.REQUEST_TIMEOUT
    if (reason or "").startswith("keyframes."):
        return FailureCode.INPUT
    return FailureCode.INTERNAL
