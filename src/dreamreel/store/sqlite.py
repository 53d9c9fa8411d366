"""SQLite job store (the embedded default): WAL mode, one short transaction per verb.

It implements ``core.jobstore.JobStore``, whose page states each verb's contract (atomicity, fencing,
outbox, attempts); ``tests/contract/`` checks them.

Why this shape:
- ``BEGIN IMMEDIATE`` takes SQLite's single write lock up front, so "pick the oldest queued job and
  mark it running" is atomic across processes without any extra locking.
- A connection per call keeps the store safe to use from FastAPI's thread pool and from worker
  heartbeat threads; opening a SQLite connection costs microseconds.
- Worker writes are *fenced*: completing, failing or reporting progress names the worker, and a
  worker whose lease lapsed (and whose job went to someone else) is refused.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dreamreel.core.failures import CANCELLED_REASON, REQUEST_TIMEOUT_REASON, FailureCode
from dreamreel.core.generation import Assets, Generation, State, VideoInfo
from dreamreel.core.jobstore import MAX_ATTEMPTS, Delivery, Event, Heartbeat
from dreamreel.store.codec import (
    generation_from_row,
    generation_to_row,
    snapshot_from_json,
    snapshot_to_json,
    video_info_to_json,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    dialect TEXT NOT NULL,
    request TEXT NOT NULL,
    callback_url TEXT,
    state TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    failure_code TEXT,
    failure_reason TEXT,
    progress_step INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    assets TEXT NOT NULL DEFAULT '{}',
    video_info TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    start_deadline REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    lease_expires_at REAL,
    deleted INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'video',
    source_id TEXT,
    notify_on TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS generations_queue ON generations (state, priority DESC, seq);
CREATE INDEX IF NOT EXISTS generations_owner ON generations (owner, deleted, seq);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    generation_id TEXT NOT NULL,
    timestamp REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_generation ON events (generation_id, id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    generation_id TEXT NOT NULL,
    kind TEXT NOT NULL,  -- always 'callback' (the one kind of delivery); kept for the first release's rows
    url TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    abandoned INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at, abandoned, next_attempt_at);
"""

COLUMNS = (
    "id, owner, dialect, request, callback_url, state, seed, created_at, updated_at, started_at, "
    "finished_at, failure_code, failure_reason, progress_step, progress_total, assets, video_info, attempts, priority, "
    "start_deadline, cancel_requested, worker_id, lease_expires_at, kind, source_id, notify_on"
)

ADDED_COLUMNS = {
    "kind": ("TEXT NOT NULL DEFAULT 'video'", ()),
    "source_id": ("TEXT", ()),
    "failure_code": ("TEXT", (
        "UPDATE generations SET failure_code = 'request_timeout' WHERE failure_reason = "
        f"'{REQUEST_TIMEOUT_REASON}'",
        "UPDATE generations SET failure_code = 'input' WHERE failure_reason LIKE 'keyframes.%'",
        "UPDATE generations SET failure_code = 'cancelled' WHERE state = 'cancelled'",
        "UPDATE generations SET failure_code = 'internal' WHERE state = 'failed' AND failure_code IS NULL",
    )),
    "notify_on": ("TEXT NOT NULL DEFAULT ''", (
        # What each dialect notified on before the column existed, so queued jobs keep their callbacks.
        "UPDATE generations SET notify_on = 'running,completed,failed' WHERE dialect = 'luma'",
        "UPDATE generations SET notify_on = 'completed,failed,cancelled' WHERE dialect = 'fal'",
    )),
}
"""Columns added after the first release, with the statements that fill them for older rows: databases
created before them get them on open."""


class SQLiteStore:
    """A ``JobStore`` on one SQLite file shared by the API and worker processes of one machine."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            have = {row["name"] for row in conn.execute("PRAGMA table_info(generations)")}
            for name, (decl, backfill) in ADDED_COLUMNS.items():
                if name in have:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(f"ALTER TABLE generations ADD COLUMN {name} {decl}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    conn.execute("ROLLBACK")
                    if "duplicate column" not in str(exc):
                        raise
                    continue
                for statement in backfill:
                    conn.execute(statement)
                conn.execute("COMMIT")

    # --- plumbing -------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from the start (atomic read-modify-write)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _fetch(self, conn: sqlite3.Connection, generation_id: str) -> Generation | None:
        """The row as a Generation, or None when it is absent or deleted."""
        row = conn.execute(
            f"SELECT {COLUMNS} FROM generations WHERE id = ? AND deleted = 0", (generation_id,)
        ).fetchone()
        return generation_from_row(dict(row)) if row else None

    def _notify(self, conn: sqlite3.Connection, generation_id: str, now: float) -> None:
        """After a transition: the outbox row for the state it entered, if the generation notifies on it (a
        deleted generation notifies nothing: its owner was told it is gone)."""
        generation = self._fetch(conn, generation_id)
        if generation is not None:
            self._enqueue_callback(conn, generation, now)

    def _enqueue_callback(self, conn: sqlite3.Connection, generation: Generation, now: float) -> None:
        """Outbox row written in the same transaction as the state change it reports."""
        url = generation.request.callback_url
        if not url or generation.state not in generation.notify_on:
            return
        conn.execute(
            "INSERT INTO outbox (generation_id, kind, url, snapshot, created_at, next_attempt_at)"
            " VALUES (?, 'callback', ?, ?, ?, ?)",
            (generation.id, url, snapshot_to_json(generation), now, now),
        )

    def _event(self, conn: sqlite3.Connection, generation_id: str, level: str, message: str) -> None:
        conn.execute(
            "INSERT INTO events (generation_id, timestamp, level, message) VALUES (?, ?, ?, ?)",
            (generation_id, time.time(), level, message),
        )

    # --- API side -------------------------------------------------------------------------
    def create(self, generation: Generation) -> Generation:
        row = generation_to_row(generation)
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._write() as conn:
            conn.execute(f"INSERT INTO generations ({names}) VALUES ({marks})", tuple(row.values()))
            self._event(conn, generation.id, "INFO", "Request accepted and queued")
        return generation

    def get(self, generation_id: str) -> Generation | None:
        with self._connect() as conn:
            return self._fetch(conn, generation_id)

    def list(self, owner: str, limit: int, offset: int) -> list[Generation]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM generations WHERE owner = ? AND deleted = 0"
                " ORDER BY seq DESC LIMIT ? OFFSET ?",
                (owner, limit, offset),
            ).fetchall()
        return [generation_from_row(dict(row)) for row in rows]

    def count(self, owner: str) -> int:
        with self._connect() as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM generations WHERE owner = ? AND deleted = 0", (owner,)
            ).fetchone()[0]

    def queue_position(self, generation_id: str) -> int | None:
        """Jobs ahead of this one in the queue (0 = next to run); None when it is not queued."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT seq, priority FROM generations WHERE id = ? AND state = 'queued'", (generation_id,)
            ).fetchone()
            if row is None:
                return None
            return conn.execute(
                "SELECT COUNT(*) FROM generations WHERE state = 'queued' AND deleted = 0"
                " AND (priority > ? OR (priority = ? AND seq < ?))",
                (row["priority"], row["priority"], row["seq"]),
            ).fetchone()[0]

    def delete(self, generation_id: str) -> Generation | None:
        """Hide a generation; a queued one is cancelled, a running one is asked to stop."""
        now = time.time()
        with self._write() as conn:
            generation = self._fetch(conn, generation_id)
            if generation is None:
                return None
            conn.execute(
                "UPDATE generations SET deleted = 1, cancel_requested = 1, updated_at = ? WHERE id = ?",
                (now, generation_id),
            )
            if generation.state == State.QUEUED:
                self._cancel_queued(conn, generation_id, now, "Cancelled while queued (deleted)")
        return generation

    def _cancel_queued(self, conn: sqlite3.Connection, generation_id: str, now: float, message: str) -> None:
        conn.execute(
            "UPDATE generations SET state = 'cancelled', cancel_requested = 1, finished_at = ?, updated_at = ?,"
            " failure_code = ?, failure_reason = ? WHERE id = ? AND state = 'queued'",
            (now, now, FailureCode.CANCELLED.value, CANCELLED_REASON, generation_id),
        )
        self._event(conn, generation_id, "INFO", message)
        self._notify(conn, generation_id, now)

    def request_cancel(self, generation_id: str) -> Generation | None:
        now = time.time()
        with self._write() as conn:
            generation = self._fetch(conn, generation_id)
            if generation is None:
                return None
            if generation.state == State.QUEUED:
                self._cancel_queued(conn, generation_id, now, "Cancelled while queued")
            elif generation.state == State.RUNNING:
                conn.execute(
                    "UPDATE generations SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                    (now, generation_id),
                )
            return self._fetch(conn, generation_id)

    def events(self, generation_id: str, after_id: int = 0) -> list[Event]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, generation_id, timestamp, level, message FROM events"
                " WHERE generation_id = ? AND id > ? ORDER BY id",
                (generation_id, after_id),
            ).fetchall()
        return [Event(**dict(row)) for row in rows]

    # --- worker side ----------------------------------------------------------------------
    def _reclaim_lapsed(self, conn: sqlite3.Connection, now: float) -> None:
        """Hand back jobs whose worker stopped heart-beating (it died or hung)."""
        lapsed = conn.execute(
            "SELECT id, attempts, cancel_requested FROM generations WHERE state = 'running' AND lease_expires_at < ?",
            (now,),
        ).fetchall()
        for row in lapsed:
            if row["cancel_requested"]:  # cancelled or deleted while its worker died: nobody wants a re-run
                self._end(conn, row["id"], State.CANCELLED, FailureCode.CANCELLED, CANCELLED_REASON, now)
                self._event(conn, row["id"], "INFO", "Worker lease lapsed on a cancelled request; not re-run")
            elif row["attempts"] >= MAX_ATTEMPTS:
                self._end(conn, row["id"], State.FAILED, FailureCode.WORKER_LOST,
                          f"worker lost {row['attempts']} times; giving up", now)
            else:
                conn.execute(
                    "UPDATE generations SET state = 'queued', worker_id = NULL, lease_expires_at = NULL,"
                    " progress_step = 0, updated_at = ? WHERE id = ?",
                    (now, row["id"]),
                )
                self._event(conn, row["id"], "WARNING", "Worker lease lapsed; request re-queued")
                self._notify(conn, row["id"], now)

    def _expire_deadlines(self, conn: sqlite3.Connection, now: float) -> None:
        """Fail queued jobs whose start deadline passed: the caller asked not to start them late."""
        expired = conn.execute(
            "SELECT id FROM generations WHERE state = 'queued' AND start_deadline IS NOT NULL AND start_deadline < ?",
            (now,),
        ).fetchall()
        for row in expired:
            self._end(conn, row["id"], State.FAILED, FailureCode.REQUEST_TIMEOUT, REQUEST_TIMEOUT_REASON, now)
            self._event(conn, row["id"], "ERROR", "Request timed out before it could start")

    def _end(
        self, conn: sqlite3.Connection, generation_id: str, state: State, code: FailureCode, reason: str, now: float,
    ) -> None:
        """A time-based unsuccessful end (no worker to fence on), with its outbox row."""
        conn.execute(
            "UPDATE generations SET state = ?, worker_id = NULL, lease_expires_at = NULL, finished_at = ?,"
            " updated_at = ?, failure_code = ?, failure_reason = ? WHERE id = ?",
            (state.value, now, now, code.value, reason, generation_id),
        )
        self._notify(conn, generation_id, now)

    def housekeep(self) -> None:
        """Time-based transitions nobody else triggers: lapsed leases, passed start deadlines."""
        now = time.time()
        with self._write() as conn:
            self._reclaim_lapsed(conn, now)
            self._expire_deadlines(conn, now)

    def claim(self, worker_id: str, lease_s: float) -> Generation | None:
        now = time.time()
        with self._write() as conn:
            self._reclaim_lapsed(conn, now)
            self._expire_deadlines(conn, now)
            row = conn.execute(
                "SELECT id FROM generations WHERE state = 'queued' AND deleted = 0 ORDER BY priority DESC, seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE generations SET state = 'running', worker_id = ?, lease_expires_at = ?,"
                " started_at = COALESCE(started_at, ?), updated_at = ?, attempts = attempts + 1,"
                # a preview left by a worker that died belongs to the abandoned attempt
                " assets = json_remove(assets, '$.progress_video') WHERE id = ?",
                (worker_id, now + lease_s, now, now, row["id"]),
            )
            self._event(conn, row["id"], "INFO", f"Worker {worker_id} started the request")
            claimed = self._fetch(conn, row["id"])
            assert claimed is not None
            self._enqueue_callback(conn, claimed, now)
            return claimed

    def heartbeat(self, generation_id: str, worker_id: str, lease_s: float) -> Heartbeat:
        now = time.time()
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE generations SET lease_expires_at = ? WHERE id = ? AND state = 'running'"
                " AND worker_id = ?",
                (now + lease_s, generation_id, worker_id),
            ).rowcount
            row = conn.execute(
                "SELECT cancel_requested FROM generations WHERE id = ?", (generation_id,)
            ).fetchone()
        return Heartbeat(owned=updated == 1, cancel_requested=bool(row and row["cancel_requested"]))

    def record_progress(self, generation_id: str, worker_id: str, step: int, total: int) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    "UPDATE generations SET progress_step = ?, progress_total = ?, updated_at = ?"
                    " WHERE id = ? AND state = 'running' AND worker_id = ?",
                    (step, total, time.time(), generation_id, worker_id),
                ).rowcount
                == 1
            )

    def record_preview(self, generation_id: str, worker_id: str, key: str) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    "UPDATE generations SET assets = json_set(assets, '$.progress_video', ?), updated_at = ?"
                    " WHERE id = ? AND state = 'running' AND worker_id = ?",
                    (key, time.time(), generation_id, worker_id),
                ).rowcount
                == 1
            )

    def release(self, generation_id: str, worker_id: str) -> bool:
        """A worker shutting down hands its job back without waiting for the lease to lapse."""
        with self._write() as conn:
            released = conn.execute(
                "UPDATE generations SET state = 'queued', worker_id = NULL, lease_expires_at = NULL,"
                " progress_step = 0, attempts = MAX(attempts - 1, 0), updated_at = ?"
                " WHERE id = ? AND state = 'running' AND worker_id = ?",
                (time.time(), generation_id, worker_id),
            ).rowcount
            if released:
                self._event(conn, generation_id, "WARNING", "Worker shut down; request re-queued")
                self._notify(conn, generation_id, time.time())
            return released == 1

    def add_event(self, generation_id: str, level: str, message: str) -> None:
        with self._write() as conn:
            self._event(conn, generation_id, level, message)

    def _finish(
        self, generation_id: str, worker_id: str | None, state: State, sets: str, params: tuple
    ) -> bool:
        now = time.time()
        fence = "AND worker_id = ?" if worker_id is not None else ""
        fence_params = (worker_id,) if worker_id is not None else ()
        with self._write() as conn:
            changed = conn.execute(
                f"UPDATE generations SET state = ?, {sets}, finished_at = ?, updated_at = ?,"
                f" lease_expires_at = NULL WHERE id = ? AND state IN ('running', 'queued') {fence}",
                (state.value, *params, now, now, generation_id, *fence_params),
            ).rowcount
            if changed != 1:
                return False
            self._notify(conn, generation_id, now)
            return True

    def complete(self, generation_id: str, worker_id: str, assets: Assets, video: VideoInfo) -> bool:
        return self._finish(
            generation_id,
            worker_id,
            State.COMPLETED,
            "assets = ?, video_info = ?, progress_step = progress_total",
            (json.dumps(assets.to_json()), video_info_to_json(video)),
        )

    def fail(self, generation_id: str, worker_id: str | None, code: FailureCode, reason: str) -> bool:
        return self._finish(generation_id, worker_id, State.FAILED, "failure_code = ?, failure_reason = ?",
                            (code.value, reason))

    def finish_cancelled(self, generation_id: str, worker_id: str) -> bool:
        return self._finish(generation_id, worker_id, State.CANCELLED, "failure_code = ?, failure_reason = ?",
                            (FailureCode.CANCELLED.value, CANCELLED_REASON))

    # --- webhook outbox -------------------------------------------------------------------
    def claim_deliveries(self, limit: int, lease_s: float) -> list[Delivery]:
        """Take due deliveries and push their next attempt time out by ``lease_s`` while we send."""
        now = time.time()
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, generation_id, url, snapshot, attempts FROM outbox"
                " WHERE delivered_at IS NULL AND abandoned = 0 AND next_attempt_at <= ?"
                # In order per generation: 'completed' never overtakes a 'dreaming' still retrying.
                " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.generation_id ="
                " outbox.generation_id AND earlier.id < outbox.id AND earlier.delivered_at IS NULL"
                " AND earlier.abandoned = 0)"
                " ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
            for row in rows:
                conn.execute(
                    "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ?",
                    (now + lease_s, row["id"]),
                )
        return [
            Delivery(
                id=row["id"],
                generation_id=row["generation_id"],
                url=row["url"],
                snapshot=snapshot_from_json(row["snapshot"]),
                attempts=row["attempts"] + 1,
            )
            for row in rows
        ]

    def delivery_succeeded(self, delivery_id: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE outbox SET delivered_at = ? WHERE id = ?", (time.time(), delivery_id))

    def delivery_failed(self, delivery_id: int, error: str, retry_at: float | None) -> None:
        with self._write() as conn:
            if retry_at is None:
                conn.execute(
                    "UPDATE outbox SET abandoned = 1, last_error = ? WHERE id = ?", (error, delivery_id)
                )
            else:
                conn.execute(
                    "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
                    (retry_at, error, delivery_id),
                )

    def close(self) -> None:
        """Connections are per call; nothing to release."""
