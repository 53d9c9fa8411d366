"""Retention: with ``retention_days`` set, generations that finished longer ago than that are deleted with their
files, and so are uploads older than that. Usage ledger rows stay: they outlive the generations they bill.

Who runs it: every API process, from its webhook dispatcher thread, at start and then every
``retention_interval_seconds`` (hourly by default), so it happens with no worker running and no cron job; and
``dreamreel retention [--dry-run]`` on demand. Several nodes running it at once is safe: every step is
idempotent (a file already gone, a row already purged, are skipped).

Order per generation: its files first, then its rows. A crash in between leaves rows whose files are gone,
which the next run removes; the other order could leave files no row points to, never deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from dreamreel.core.filestore import FileStore
from dreamreel.core.jobstore import JobStore

DAY_S = 86_400.0
BATCH = 200
"""Generations fetched, deleted and purged per store call."""
DRY_RUN_LIMIT = 10_000
"""A dry run lists at most this many generations (a real run pages through them all)."""


@dataclass(frozen=True)
class Expired:
    """One thing retention deletes (or, in a dry run, would delete)."""

    kind: Literal["generation", "upload"]
    id: str
    owner: str
    finished_at: float
    """When the generation finished; for an upload, when it was uploaded."""
    bytes: int
    """Bytes its files take on disk."""


@dataclass
class RetentionReport:
    cutoff: float
    """Things older than this (Unix time) are deleted."""
    dry_run: bool
    items: list[Expired] = field(default_factory=list)
    truncated: bool = False
    """A dry run stopped listing generations at :data:`DRY_RUN_LIMIT`."""

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)


def run_retention(
    store: JobStore, files: FileStore, *, days: float, dry_run: bool = False, now: float | None = None,
) -> RetentionReport:
    """Delete (or only list, ``dry_run``) what finished more than ``days`` ago."""
    cutoff = (time.time() if now is None else now) - days * DAY_S
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        generations = store.finished_before(cutoff, DRY_RUN_LIMIT + 1)
        report.truncated = len(generations) > DRY_RUN_LIMIT
        report.items += [_expired(files, g.id, g.owner, g.finished_at) for g in generations[:DRY_RUN_LIMIT]]
    else:
        while batch := store.finished_before(cutoff, BATCH):
            found = [_expired(files, g.id, g.owner, g.finished_at) for g in batch]
            for item in found:
                files.delete_generation(item.id)
            purged = set(store.purge_generations([item.id for item in found]))
            report.items += [item for item in found if item.id in purged]
            if not purged:  # nothing movable left in this batch: never loop on it
                break
    for upload in files.list_uploads():
        if upload.created_at < cutoff and (dry_run or files.delete_upload(upload.owner, upload.id)):
            report.items.append(Expired("upload", upload.id, upload.owner, upload.created_at, upload.bytes))
    return report


def _expired(files: FileStore, generation_id: str, owner: str, finished_at: float | None) -> Expired:
    return Expired("generation", generation_id, owner, finished_at or 0.0, files.generation_bytes(generation_id))


class RetentionSchedule:
    """Runs :func:`run_retention` at most every ``interval_s`` (first call: at once); for a long-lived loop."""

    def __init__(self, store: JobStore, files: FileStore, *, days: float | None, interval_s: float) -> None:
        self.store, self.files, self.days, self.interval_s = store, files, days, interval_s
        self._next = 0.0

    def run_if_due(self) -> RetentionReport | None:
        if self.days is None or time.monotonic() < self._next:
            return None
        self._next = time.monotonic() + self.interval_s
        return run_retention(self.store, self.files, days=self.days)
