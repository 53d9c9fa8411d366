"""The store interface: domain verbs over durable state, nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dreamreel.core.generation import Assets, Generation, VideoInfo


@dataclass(frozen=True)
class Heartbeat:
    """Answer to a lease renewal: whether the worker still owns the job and whether to stop."""

    owned: bool
    cancel_requested: bool


@dataclass(frozen=True)
class Event:
    """A progress or log line attached to a generation (fal shows these as ``logs``)."""

    id: int
    generation_id: str
    timestamp: float
    level: str
    message: str


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery waiting in the outbox: a generation snapshot to POST to ``url``."""

    id: int
    generation_id: str
    kind: str
    url: str
    snapshot: Generation
    attempts: int


class JobStore(Protocol):
    # --- API side -------------------------------------------------------------------------
    def create(self, generation: Generation) -> Generation: ...

    def get(self, generation_id: str) -> Generation | None: ...

    def list(self, owner: str, limit: int, offset: int) -> list[Generation]: ...

    def count(self, owner: str) -> int: ...

    def queue_position(self, generation_id: str) -> int | None: ...

    def delete(self, generation_id: str) -> Generation | None: ...

    def request_cancel(self, generation_id: str) -> Generation | None: ...

    def events(self, generation_id: str, after_id: int = 0) -> list[Event]: ...

    def housekeep(self) -> None: ...

    # --- worker side ----------------------------------------------------------------------
    def claim(self, worker_id: str, lease_s: float) -> Generation | None: ...

    def heartbeat(self, generation_id: str, worker_id: str, lease_s: float) -> Heartbeat: ...

    def record_progress(self, generation_id: str, worker_id: str, step: int, total: int) -> bool: ...

    def record_preview(self, generation_id: str, worker_id: str, key: str) -> bool:
        """Point ``assets.progress_video`` at ``key`` while the job runs on this worker (else False)."""
        ...

    def release(self, generation_id: str, worker_id: str) -> bool: ...

    def add_event(self, generation_id: str, level: str, message: str) -> None: ...

    def complete(self, generation_id: str, worker_id: str, assets: Assets, video: VideoInfo) -> bool: ...

    def fail(self, generation_id: str, worker_id: str | None, reason: str) -> bool: ...

    def finish_cancelled(self, generation_id: str, worker_id: str) -> bool: ...

    # --- webhook outbox -------------------------------------------------------------------
    def claim_deliveries(self, limit: int, lease_s: float) -> list[Delivery]: ...

    def delivery_succeeded(self, delivery_id: int) -> None: ...

    def delivery_failed(self, delivery_id: int, error: str, retry_at: float | None) -> None: ...

    def close(self) -> None: ...
