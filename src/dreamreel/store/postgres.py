"""PostgreSQL job store: many API processes and workers on many machines, one database.

The verbs are ``store/sql.py``'s (shared with SQLite, so both keep the same contract); this module adds what
PostgreSQL needs: a connection pool (``psycopg_pool``), row locks (``FOR UPDATE [SKIP LOCKED]``) in place of
SQLite's one write lock, versioned schema migrations applied under an advisory lock (several processes
starting at once apply each migration exactly once), and ``LISTEN``/``NOTIFY`` so an idle worker wakes the
moment a job is queued instead of at its next poll.

Times are the callers' ``time.time()``, as on SQLite: leases and deadlines compare clocks of different
machines, so nodes must keep NTP time (a skew of a few seconds is small beside the 30 s lease).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dreamreel.core.errors import StoreUnavailable
from dreamreel.store.accounts import account_tables
from dreamreel.store.sql import Cursor, SQLJobStore

log = logging.getLogger("dreamreel.store")

WAKE_CHANNEL = "dreamreel_work"
"""``NOTIFY``'d when a job is queued or re-queued; idle workers ``LISTEN`` on it."""

MIGRATION_LOCK = 7_406_371_802
"""``pg_advisory_lock`` key held while migrating (any constant unlikely to collide with another app's)."""

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE generations (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    dialect TEXT NOT NULL,
    request TEXT NOT NULL,
    callback_url TEXT,
    state TEXT NOT NULL,
    seed BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    failure_code TEXT,
    failure_reason TEXT,
    progress_step INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    assets TEXT NOT NULL DEFAULT '{}',
    video_info TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    start_deadline DOUBLE PRECISION,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    lease_expires_at DOUBLE PRECISION,
    deleted INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'video',
    source_id TEXT,
    notify_on TEXT NOT NULL DEFAULT ''
);
CREATE INDEX generations_queue ON generations (state, priority DESC, seq);
CREATE INDEX generations_owner ON generations (owner, deleted, seq);
CREATE INDEX generations_lease ON generations (lease_expires_at) WHERE state = 'running';
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    generation_id TEXT NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX events_generation ON events (generation_id, id);
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    generation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION,
    abandoned INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (delivered_at, abandoned, next_attempt_at);
CREATE INDEX outbox_generation ON outbox (generation_id, id);
"""),
    (2, """
CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    device TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',
    current_job TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
"""),
    (3, account_tables(real="DOUBLE PRECISION", serial="BIGSERIAL", autoincrement="", blob="BYTEA")),
    (4, "ALTER TABLE generations ADD COLUMN request_id TEXT;"),
]
"""``(version, SQL)`` in order; a released migration is never edited, a change is a new entry. The column
names and types mirror SQLite's so ``store/codec.py`` reads both (flags stay 0/1 integers)."""


def migrate(conninfo: str) -> list[int]:
    """Apply the migrations this database lacks, under an advisory lock; returns the versions applied."""
    applied: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                         " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
            have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in have:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                                 (version, time.time()))
                applied.append(version)
                log.info("applied schema migration %d", version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


class _QmarkConnection:
    """A psycopg connection taking the ``?`` placeholders the shared verbs are written with."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        return self.conn.execute(sql.replace("?", "%s"), params)  # type: ignore[return-value]


class PostgresStore(SQLJobStore):
    """A ``JobStore`` on one PostgreSQL database shared by every API process and worker."""

    FOR_UPDATE = " FOR UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    SET_PREVIEW = "(assets::jsonb || jsonb_build_object('progress_video', ?::text))::text"
    DROP_PREVIEW = "(assets::jsonb - 'progress_video')::text"
    MODEL_OF_REQUEST = "(request::jsonb ->> 'model')"

    def __init__(self, conninfo: str, *, pool_size: int = 8, connect_timeout_s: float = 3.0) -> None:
        self.conninfo = conninfo
        self.connect_timeout_s = connect_timeout_s
        migrate(conninfo)
        # ``check`` tests a pooled connection before lending it: after a database restart every idle one is
        # dead, and a request should get a fresh connection rather than an error.
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, kwargs={"row_factory": dict_row},
                                   open=True, name="dreamreel", check=ConnectionPool.check_connection,
                                   timeout=connect_timeout_s)
        self._listener: psycopg.Connection[Any] | None = None

    @contextmanager
    def _write(self) -> Iterator[_QmarkConnection]:
        """One transaction on a pooled connection: committed when the block ends, rolled back if it raises.

        A lost or unreachable database is :class:`StoreUnavailable` (503 with ``Retry-After`` in every dialect)
        after at most ``connect_timeout_s``, never a hung request or a 500."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield _QmarkConnection(conn)
        except psycopg.OperationalError as exc:  # includes the pool's PoolTimeout
            raise StoreUnavailable("the job store is unavailable; retry shortly") from exc

    _read = _write

    def _after_copy(  # type: ignore[override]
        self, conn: _QmarkConnection, id_columns: tuple[tuple[str, str], ...],
    ) -> None:
        for table, column in id_columns:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                         f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)")

    def _wake_workers(self, conn: _QmarkConnection) -> None:  # type: ignore[override]
        conn.execute(f"NOTIFY {WAKE_CHANNEL}")

    def wait_for_work(self, timeout_s: float) -> None:
        """Return at the first ``NOTIFY`` of a queued job, or after ``timeout_s`` (polling stays the fallback:
        a notification sent while no worker listened is not kept). The listening connection stays open
        between waits, so a job queued while this worker was busy still wakes its next wait at once."""
        try:
            if self._listener is None or self._listener.closed:
                self._listener = psycopg.connect(self.conninfo, autocommit=True)
                self._listener.execute(f"LISTEN {WAKE_CHANNEL}")
            for _ in self._listener.notifies(timeout=timeout_s, stop_after=1):
                pass
        except psycopg.Error as exc:  # the database went away: wait as a poller would, reconnect next time
            log.warning("LISTEN connection failed (%s); polling", exc)
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            time.sleep(timeout_s)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.pool.close()
