"""SQLite job store (the embedded default): WAL mode, one short transaction per verb.

The verbs are ``store/sql.py``'s (shared with PostgreSQL); this module opens the file, keeps its schema up
to date, and takes SQLite's write lock for every write transaction.

Why this shape:
- ``BEGIN IMMEDIATE`` takes SQLite's single write lock up front, so "pick the oldest queued job and
  mark it running" is atomic across processes without any extra locking.
- A connection per write keeps the store safe to use from FastAPI's thread pool and from worker heartbeat
  threads. Reads run on a connection kept per thread instead: a new connection parses the whole schema on its
  first statement (about 0.5 ms of CPU, eight times the read itself), most of a status poll's cost. In
  autocommit mode every statement is its own read transaction, so a kept connection sees each commit as a new
  one would, and in WAL mode it never blocks a writer.
- A commit that queued work rings the idle workers' wake-up pipes (``store/wakeup.py``), so a job submitted
  to an idle worker of this machine starts within milliseconds, as ``LISTEN``/``NOTIFY`` does on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dreamreel.core.failures import REQUEST_TIMEOUT_REASON
from dreamreel.store.accounts import account_tables
from dreamreel.store.sql import SQLJobStore
from dreamreel.store.wakeup import WakeUp

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
    notify_on TEXT NOT NULL DEFAULT '',
    request_id TEXT
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
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    device TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',  -- JSON list of public model names
    current_job TEXT,
    started_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
""" + account_tables(real="REAL", serial="INTEGER", autoincrement=" AUTOINCREMENT", blob="BLOB")

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
    "request_id": ("TEXT", ()),
}
"""Columns added after the first release, with the statements that fill them for older rows: databases
created before them get them on open."""


class _ReadConnection(sqlite3.Connection):
    """A kept read connection: a subclass only so that the store can hold it weakly."""


class SQLiteStore(SQLJobStore):
    """A ``JobStore`` on one SQLite file shared by the API and worker processes of one machine."""

    local_reads = True
    """WAL mode: a read takes no lock a writer holds, and a status row is about 60 µs from the page cache (the
    rare wait: another connection recovering the WAL after a crash, bounded by the busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wakeup = WakeUp(self.path)
        self._pending = threading.local()
        """Per thread: whether the open write transaction queued work (rung once it commits)."""
        self._readers = threading.local()
        """Per thread: its kept read connection (:meth:`_read`)."""
        self._reader_conns: weakref.WeakSet[_ReadConnection] = weakref.WeakSet()
        """Every thread's, for :meth:`close`; weak, so a thread that ends (a pool shrinking) takes its own along."""
        self._readers_lock = threading.Lock()
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
    def _open(self, *, shared: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=not shared,
                               factory=_ReadConnection if shared else sqlite3.Connection)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """This thread's kept read connection (opened on its first read; closed by :meth:`close`, or when its
        thread ends). Opened ``shared`` only so that :meth:`close` may close it from another thread: each is used
        by its own thread alone."""
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._open(shared=True)
            self._readers.conn = conn
            with self._readers_lock:
                self._reader_conns.add(conn)
        yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from the start (atomic read-modify-write)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            self._pending.ring = False
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if self._pending.ring:  # after the commit: a worker woken sooner would find nothing yet
            self._pending.ring = False
            self._wakeup.ring()

    def _wake_workers(self, conn: sqlite3.Connection) -> None:  # type: ignore[override]
        self._pending.ring = True

    def wait_for_work(self, timeout_s: float) -> None:
        """Return when a commit of this machine queues work (``store/wakeup.py``), else after ``timeout_s``."""
        self._wakeup.wait(timeout_s)

    def close(self) -> None:
        self._wakeup.close()
        with self._readers_lock:
            conns, self._reader_conns = list(self._reader_conns), weakref.WeakSet()
            self._readers = threading.local()  # a read after close opens a new connection, as before
        for conn in conns:
            conn.close()
