"""Durable job state behind ``core.jobstore.JobStore``: generations, their events and the webhook outbox.

``sqlite.SQLiteStore`` is the embedded default. Every state change commits before it is acknowledged,
so a killed process loses no accepted job.
"""

from dreamreel.core.jobstore import JobStore

__all__ = ["JobStore", "open_store"]


def open_store(url: str) -> JobStore:
    """Open the store a URL names (``sqlite:///path/to.db``)."""
    if url.startswith("sqlite:///"):
        from dreamreel.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    raise ValueError(f"unsupported database URL {url!r} (expected sqlite:///path)")
