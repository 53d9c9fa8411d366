"""One exception family for the whole service; each dialect renders it in its own error shape."""

from __future__ import annotations


class DreamreelError(Exception):
    """Something went wrong while serving a request."""

    status_code: int = 500

    def __init__(
        self, message: str | None = None, *, field: str | None = None, details: list[dict] | None = None
    ) -> None:
        self.message = message or (self.__doc__ or "error").strip()
        self.field = field
        self.details = details
        """Structured per-field problems (``loc``, ``msg``, ``type``), for dialects that return a list."""
        super().__init__(self.message)


class InvalidRequest(DreamreelError):
    """The request is malformed."""

    status_code = 422


class NotSupported(DreamreelError):
    """This server does not support that option (yet, or for this model)."""

    status_code = 422


class NotFound(DreamreelError):
    """No such generation."""

    status_code = 404


class Conflict(DreamreelError):
    """The generation is not in a state that allows this."""

    status_code = 409


class Unauthorized(DreamreelError):
    """Missing or invalid API key."""

    status_code = 401


class StoreUnavailable(DreamreelError):
    """The job store cannot be reached right now (a database restart, a network partition); retry shortly.

    Nothing was accepted or changed: a store verb is one transaction. Dialects answer 503 with
    ``Retry-After``."""

    status_code = 503
    retry_after_s = 5


class PayloadTooLarge(DreamreelError):
    """The request body is larger than this server accepts."""

    status_code = 413


class TooManyRequests(DreamreelError):
    """A per-key limit is reached (requests per minute, queued generations, uploads); retry later."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int = 1, field: str | None = None,
                 limit: str = "other") -> None:
        super().__init__(message, field=field)
        self.retry_after_s = max(1, retry_after_s)
        self.limit = limit
        """Which limit refused it (``requests_per_minute``, ``queued``): the metrics' label."""


class InsufficientCredits(DreamreelError):
    """The key's balance, less what its running work has reserved, is below this request's cost."""

    status_code = 402


class ServiceBusy(DreamreelError):
    """The server cannot take new work right now (e.g. its output volume is nearly full); retry later."""

    status_code = 503

    def __init__(self, message: str, *, retry_after_s: int = 30) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(DreamreelError):
    """The caller may not do this (an operator route with a client key, a cross-site browser request)."""

    status_code = 403
