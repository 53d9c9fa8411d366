"""Durable job state: generations, their progress events and the webhook outbox.

``base.JobStore`` is the narrow seam; ``sqlite.SQLiteStore`` is the embedded default. Every state
change commits before it is acknowledged, so a killed process loses no accepted job.
"""

from dreamreel.store.base import Delivery, Event, Heartbeat, JobStore

__all__ = ["Delivery", "Event", "Heartbeat", "JobStore", "open_store"]


def open_store(url: str) -> JobStore:
    """Open the store a URL names (``sqlite:///path/to.db``)."""
    if url.startswith("sqlite:///"):
        from dreamreel.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    raise ValueError(f"unsupported database URL {url!r} (expected sqlite:///path)")
