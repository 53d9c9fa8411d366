"""The job store's verbs written once in SQL, for every backend: SQLite and PostgreSQL differ only in how
they connect, lock and spell a few expressions.

The contract each verb keeps is ``core.jobstore``'s; ``tests/contract/`` checks it for every backend. How
concurrency is made safe:

- SQLite: every write transaction takes the database's one write lock first (``BEGIN IMMEDIATE``), so a
  read-modify-write is atomic across processes; the row-locking fragments below are empty.
- PostgreSQL: rows a verb picks to change are locked as they are read. Work is picked with ``FOR UPDATE
  SKIP LOCKED`` (two workers never get the same job and never wait on each other); a row read to be
  changed is taken ``FOR UPDATE``; fenced updates name the worker in their ``WHERE``, which PostgreSQL
  re-checks after waiting for a row lock.
- Worker writes are *fenced*: completing, failing or reporting progress names the worker, and a worker
  whose lease lapsed (and whose job went to someone else) is refused.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from typing import Any, Protocol

from dreamreel.core.failures import CANCELLED_REASON, REQUEST_TIMEOUT_REASON, FailureCode
from dreamreel.core.generation import Assets, Generation, State, VideoInfo
from dreamreel.core.jobstore import MAX_ATTEMPTS, Delivery, Event, Heartbeat, WorkerInfo
from dreamreel.store.accounts import AccountVerbs, admit, settle
from dreamreel.store.codec import (
    generation_from_row,
    generation_to_row,
    snapshot_from_json,
    snapshot_to_json,
    video_info_to_json,
)

COLUMNS = (
    "id, owner, dialect, request, callback_url, state, seed, created_at, updated_at, started_at, "
    "finished_at, failure_code, failure_reason, progress_step, progress_total, assets, video_info, attempts, "
    "priority, start_deadline, cancel_requested, worker_id, lease_expires_at, kind, source_id, notify_on, "
    "request_id"
)
WORKER_COLUMNS = "worker_id, host, pid, device, models, current_job, started_at, last_seen"


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the verbs use of a connection: ``execute`` with ``?`` placeholders, rows readable by column name."""

    def execute(self, sql: str, params: Any = ()) -> Cursor: ...


class SQLJobStore(AccountVerbs):
    """``core.jobstore.JobStore`` over SQL; a subclass provides :meth:`_read`, :meth:`_write` and the fragments."""

    local_reads = False
    """``JobStore.local_reads``: a subclass whose reads never wait says so."""
    FOR_UPDATE = ""
    """Appended to a SELECT of a row the transaction will change."""
    SKIP_LOCKED = ""
    """Appended to a SELECT that picks rows to work on (jobs, lapsed leases, deliveries)."""
    SET_PREVIEW = "json_set(assets, '$.progress_video', ?)"
    DROP_PREVIEW = "json_remove(assets, '$.progress_video')"
    MODEL_OF_REQUEST = "json_extract(request, '$.model')"
    """The public model name inside a generation's stored request."""

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        """One transaction; committed when the block ends, rolled back if it raises."""
        raise NotImplementedError

    def _after_copy(self, conn: Connection, id_columns: tuple[tuple[str, str], ...]) -> None:
        """After rows were inserted with their ids (``store/copy.py``): make new values of each ``(table,
        column)`` continue after them (SQLite's AUTOINCREMENT already does)."""

    def _wake_workers(self, conn: Connection) -> None:
        """Tell idle workers a job may be waiting (sent when the transaction commits); polling needs nothing."""

    def _fetch(self, conn: Connection, generation_id: str, *, lock: bool = False) -> Generation | None:
        """The row as a Generation, or None when it is absent or deleted; ``lock`` holds the row for this
        transaction (a read-modify-write: SQLite's write lock already does)."""
        row = conn.execute(
            f"SELECT {COLUMNS} FROM generations WHERE id = ? AND deleted = 0{self.FOR_UPDATE if lock else ''}",
            (generation_id,),
        ).fetchone()
        return generation_from_row(dict(row)) if row else None

    def _notify(self, conn: Connection, generation_id: str, now: float) -> None:
        """After a transition: the outbox row for the state it entered, if the generation notifies on it (a
        deleted generation notifies nothing: its owner was told it is gone)."""
        generation = self._fetch(conn, generation_id)
        if generation is not None:
            self._enqueue_callback(conn, generation, now)

    def _enqueue_callback(self, conn: Connection, generation: Generation, now: float) -> None:
        """Outbox row written in the same transaction as the state change it reports."""
        url = generation.request.callback_url
        if not url or generation.state not in generation.notify_on:
            return
        conn.execute(
            "INSERT INTO outbox (generation_id, kind, url, snapshot, created_at, next_attempt_at)"
            " VALUES (?, 'callback', ?, ?, ?, ?)",
            (generation.id, url, snapshot_to_json(generation), now, now),
        )

    def _event(self, conn: Connection, generation_id: str, level: str, message: str) -> None:
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
            admit(conn, generation, self.FOR_UPDATE)
            conn.execute(f"INSERT INTO generations ({names}) VALUES ({marks})", tuple(row.values()))
            self._event(conn, generation.id, "INFO", "Request accepted and queued")
            self._wake_workers(conn)
        return generation

    def get(self, generation_id: str) -> Generation | None:
        with self._read() as conn:
            return self._fetch(conn, generation_id)

    def list(self, owner: str, limit: int, offset: int) -> list[Generation]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM generations WHERE owner = ? AND deleted = 0"
                " ORDER BY seq DESC LIMIT ? OFFSET ?",
                (owner, limit, offset),
            ).fetchall()
        return [generation_from_row(dict(row)) for row in rows]

    def count(self, owner: str) -> int:
        with self._read() as conn:
            return conn.execute(
                "SELECT COUNT(*) AS n FROM generations WHERE owner = ? AND deleted = 0", (owner,)
            ).fetchone()["n"]

    def queue_position(self, generation_id: str) -> int | None:
        """Jobs ahead of this one in the queue (0 = next to run); None when it is not queued."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT seq, priority FROM generations WHERE id = ? AND state = 'queued'", (generation_id,)
            ).fetchone()
            if row is None:
                return None
            return conn.execute(
                "SELECT COUNT(*) AS n FROM generations WHERE state = 'queued' AND deleted = 0"
                " AND (priority > ? OR (priority = ? AND seq < ?))",
                (row["priority"], row["priority"], row["seq"]),
            ).fetchone()["n"]

    def delete(self, generation_id: str) -> Generation | None:
        """Hide a generation; a queued one is cancelled, a running one is asked to stop."""
        now = time.time()
        with self._write() as conn:
            generation = self._fetch(conn, generation_id, lock=True)
            if generation is None:
                return None
            conn.execute(
                "UPDATE generations SET deleted = 1, cancel_requested = 1, updated_at = ? WHERE id = ?",
                (now, generation_id),
            )
            if generation.state == State.QUEUED:
                self._cancel_queued(conn, generation_id, now, "Cancelled while queued (deleted)")
        return generation

    def _cancel_queued(self, conn: Connection, generation_id: str, now: float, message: str) -> None:
        conn.execute(
            "UPDATE generations SET state = 'cancelled', cancel_requested = 1, finished_at = ?, updated_at = ?,"
            " failure_code = ?, failure_reason = ? WHERE id = ? AND state = 'queued'",
            (now, now, FailureCode.CANCELLED.value, CANCELLED_REASON, generation_id),
        )
        self._event(conn, generation_id, "INFO", message)
        settle(conn, COLUMNS, generation_id, now)
        self._notify(conn, generation_id, now)

    def request_cancel(self, generation_id: str) -> Generation | None:
        now = time.time()
        with self._write() as conn:
            generation = self._fetch(conn, generation_id, lock=True)
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
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, generation_id, timestamp, level, message FROM events"
                " WHERE generation_id = ? AND id > ? ORDER BY id",
                (generation_id, after_id),
            ).fetchall()
        return [Event(**dict(row)) for row in rows]

    # --- worker side ----------------------------------------------------------------------
    def _reclaim_lapsed(self, conn: Connection, now: float) -> None:
        """Hand back jobs whose worker stopped heart-beating (it died or hung)."""
        lapsed = conn.execute(
            "SELECT id, attempts, cancel_requested FROM generations WHERE state = 'running' AND lease_expires_at < ?"
            + self.SKIP_LOCKED,
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
                self._wake_workers(conn)

    def _expire_deadlines(self, conn: Connection, now: float) -> None:
        """Fail queued jobs whose start deadline passed: the caller asked not to start them late."""
        expired = conn.execute(
            "SELECT id FROM generations WHERE state = 'queued' AND start_deadline IS NOT NULL AND start_deadline < ?"
            + self.SKIP_LOCKED,
            (now,),
        ).fetchall()
        for row in expired:
            self._end(conn, row["id"], State.FAILED, FailureCode.REQUEST_TIMEOUT, REQUEST_TIMEOUT_REASON, now)
            self._event(conn, row["id"], "ERROR", "Request timed out before it could start")

    def _end(
        self, conn: Connection, generation_id: str, state: State, code: FailureCode, reason: str, now: float,
    ) -> None:
        """A time-based unsuccessful end (no worker to fence on), with its outbox row."""
        conn.execute(
            "UPDATE generations SET state = ?, worker_id = NULL, lease_expires_at = NULL, finished_at = ?,"
            " updated_at = ?, failure_code = ?, failure_reason = ? WHERE id = ?",
            (state.value, now, now, code.value, reason, generation_id),
        )
        settle(conn, COLUMNS, generation_id, now)
        self._notify(conn, generation_id, now)

    def housekeep(self) -> None:
        """Time-based transitions nobody else triggers: lapsed leases, passed start deadlines."""
        now = time.time()
        with self._write() as conn:
            self._reclaim_lapsed(conn, now)
            self._expire_deadlines(conn, now)
            self._prune_accounts(conn, now)

    def claim(self, worker_id: str, lease_s: float) -> Generation | None:
        now = time.time()
        with self._write() as conn:
            self._reclaim_lapsed(conn, now)
            self._expire_deadlines(conn, now)
            row = self._next_job(conn)
            if row is None:
                return None
            conn.execute(
                "UPDATE generations SET state = 'running', worker_id = ?, lease_expires_at = ?,"
                " started_at = COALESCE(started_at, ?), updated_at = ?, attempts = attempts + 1,"
                # a preview left by a worker that died belongs to the abandoned attempt
                f" assets = {self.DROP_PREVIEW} WHERE id = ?",
                (worker_id, now + lease_s, now, now, row["id"]),
            )
            self._event(conn, row["id"], "INFO", f"Worker {worker_id} started the request")
            claimed = self._fetch(conn, row["id"])
            assert claimed is not None
            self._enqueue_callback(conn, claimed, now)
            return claimed

    def _next_job(self, conn: Connection) -> Any:
        """The job to run next, fairly across owners: the highest priority first; among owners with that
        priority queued, the one with the fewest jobs running, then the one whose last job started longest
        ago (round-robin), then the one waiting longest. So one key's 500 queued jobs never put another key's
        next job behind them all. Within an owner, oldest first. An owner at its key's ``concurrency`` is
        passed over until one of its running jobs ends; its key row is locked while counting, so workers on
        several machines cannot both take its last free slot."""
        owners = conn.execute(
            "SELECT q.owner, MAX(q.priority) AS top, MIN(q.seq) AS first_seq,"
            " (SELECT COUNT(*) FROM generations r WHERE r.owner = q.owner AND r.state = 'running') AS running,"
            " (SELECT MAX(r.started_at) FROM generations r WHERE r.owner = q.owner) AS last_start,"
            " (SELECT k.concurrency FROM api_keys k WHERE k.owner = q.owner) AS concurrency"
            " FROM generations q WHERE q.state = 'queued' AND q.deleted = 0 GROUP BY q.owner"
        ).fetchall()
        def turn(o: Any) -> tuple:
            return -o["top"], o["running"], o["last_start"] or 0.0, o["first_seq"]

        for owner in sorted(owners, key=turn):
            if owner["concurrency"] is not None:
                conn.execute("SELECT key_id FROM api_keys WHERE owner = ?" + self.FOR_UPDATE, (owner["owner"],))
                running = conn.execute(
                    "SELECT COUNT(*) AS n FROM generations WHERE owner = ? AND state = 'running'", (owner["owner"],)
                ).fetchone()["n"]
                if running >= owner["concurrency"]:
                    continue
            row = conn.execute(
                "SELECT id FROM generations WHERE owner = ? AND state = 'queued' AND deleted = 0"
                " ORDER BY priority DESC, seq LIMIT 1" + self.SKIP_LOCKED, (owner["owner"],)
            ).fetchone()
            if row is not None:
                return row
        return None

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
                    f"UPDATE generations SET assets = {self.SET_PREVIEW}, updated_at = ?"
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
                " progress_step = 0, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND worker_id = ?",
                (time.time(), generation_id, worker_id),
            ).rowcount
            if released:
                self._event(conn, generation_id, "WARNING", "Worker shut down; request re-queued")
                self._notify(conn, generation_id, time.time())
                self._wake_workers(conn)
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
            settle(conn, COLUMNS, generation_id, now)
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

    # --- workers --------------------------------------------------------------------------
    def announce_worker(self, info: WorkerInfo) -> None:
        """Upsert by worker id (``ON CONFLICT ... DO UPDATE``: SQLite 3.24+ and PostgreSQL spell it alike)."""
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO workers ({WORKER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " device = excluded.device, models = excluded.models, current_job = excluded.current_job,"
                " started_at = excluded.started_at, last_seen = excluded.last_seen",
                (info.worker_id, info.host, info.pid, info.device, json.dumps(list(info.models)),
                 info.current_job, info.started_at, info.last_seen),
            )

    def list_workers(self, alive_within_s: float | None = None) -> list[WorkerInfo]:
        where, params = "", ()
        if alive_within_s is not None:
            where, params = " WHERE last_seen >= ?", (time.time() - alive_within_s,)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {WORKER_COLUMNS} FROM workers{where} ORDER BY last_seen DESC, worker_id", params
            ).fetchall()
        return [
            WorkerInfo(**{**dict(row), "models": tuple(json.loads(row["models"]))}) for row in rows
        ]

    def forget_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))

    # --- the operator's picture ------------------------------------------------------------
    def queue_counts(self) -> list[tuple[str, str, int]]:
        """``(state, model, jobs)`` for the queued and running generations (deleted ones included while they
        still run: a worker is busy with them)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT state, {self.MODEL_OF_REQUEST} AS model, COUNT(*) AS n FROM generations"
                " WHERE state IN ('queued', 'running') GROUP BY state, model ORDER BY state, model"
            ).fetchall()
        return [(row["state"], row["model"] or "", int(row["n"])) for row in rows]

    def outbox_backlog(self) -> int:
        """Webhook deliveries not yet delivered nor abandoned."""
        with self._read() as conn:
            return int(conn.execute(
                "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND abandoned = 0").fetchone()["n"])

    def recent_failures(self, limit: int) -> list[Generation]:
        """The last ``limit`` failed generations, newest first (``dreamreel status``)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM generations WHERE state = 'failed' ORDER BY finished_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [generation_from_row(dict(row)) for row in rows]

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
                " ORDER BY id LIMIT ?" + self.SKIP_LOCKED,
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

    def wait_for_work(self, timeout_s: float) -> None:
        """Without notifications: wait ``timeout_s``, then the caller polls with ``claim``."""
        time.sleep(timeout_s)

    def close(self) -> None:
        """Release connections (a backend with a pool overrides this)."""

    # --- retention; handing deliveries back (appended: see core.jobstore) ---------------------
    def finished_before(self, cutoff: float, limit: int) -> list[Generation]:
        """Finished generations (deleted ones included) with ``finished_at`` before ``cutoff``, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM generations WHERE state IN ('completed', 'failed', 'cancelled')"
                " AND finished_at < ? ORDER BY finished_at, seq LIMIT ?",
                (cutoff, limit),
            ).fetchall()
        return [generation_from_row(dict(row)) for row in rows]

    def purge_generations(self, generation_ids: list[str]) -> list[str]:
        """Remove finished generations' rows for good, with their events and outbox rows; a generation not
        finished is left alone. Ledger rows are not touched. Returns the ids removed."""
        if not generation_ids:
            return []
        marks = ", ".join("?" for _ in generation_ids)
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT id FROM generations WHERE id IN ({marks})"
                " AND state IN ('completed', 'failed', 'cancelled')" + self.FOR_UPDATE,
                tuple(generation_ids),
            ).fetchall()
            doomed = [row["id"] for row in rows]
            if doomed:
                marks = ", ".join("?" for _ in doomed)
                for table, column in (("events", "generation_id"), ("outbox", "generation_id"),
                                      ("generations", "id")):
                    conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", tuple(doomed))
        return doomed

    def defer_deliveries(self, delivery_ids: list[int], retry_at: float) -> None:
        """Hand claimed deliveries back unsent, due again at ``retry_at``; the claim's attempt is not counted."""
        if not delivery_ids:
            return
        marks = ", ".join("?" for _ in delivery_ids)
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET next_attempt_at = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1"
                f" ELSE 0 END WHERE id IN ({marks}) AND delivered_at IS NULL AND abandoned = 0",
                (retry_at, *delivery_ids),
            )
