"""The account verbs of the job store in SQL: API keys, the usage ledger, rate windows, idempotent replays.

Mixed into ``store.sql.SQLJobStore`` (so SQLite and PostgreSQL share them). The parts that must commit with
a generation's own transitions — admission and the reservation at submit, the settlement when it ends — are
functions of a connection (:func:`admit`, :func:`settle`) that ``store/sql.py`` calls inside its
transactions.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from dreamreel.core.accounts import ApiKey, Balance, KeyLimits, LedgerEntry, StoredResponse
from dreamreel.core.errors import Conflict, InsufficientCredits, InvalidRequest, TooManyRequests
from dreamreel.core.generation import Generation, State
from dreamreel.core.metering import Entry, delivered_cost, request_cost, units
from dreamreel.store.codec import generation_from_row

KEY_COLUMNS = "key_id, name, owner, secret_hash, admin, rpm, concurrency, max_queued, credits, created_at, revoked_at"
LIMIT_COLUMNS = ("rpm", "concurrency", "max_queued", "credits")

IDEMPOTENCY_TTL_S = 24 * 3600
"""How long a first response is replayed to retries of the same ``Idempotency-Key``."""
IDEMPOTENCY_STALE_S = 15 * 60
"""A first request still unanswered after this long died with its process: a retry may run again."""
RATE_WINDOW_S = 60

_ACCOUNT_TABLES = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    rpm INTEGER,
    concurrency INTEGER,
    max_queued INTEGER,
    credits BIGINT,
    created_at {real} NOT NULL,
    revoked_at {real}
);
CREATE TABLE IF NOT EXISTS ledger (
    id {serial} PRIMARY KEY{autoincrement},
    owner TEXT NOT NULL,
    generation_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    amount BIGINT NOT NULL,
    created_at {real} NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    UNIQUE (generation_id, entry)
);
CREATE INDEX IF NOT EXISTS ledger_owner ON ledger (owner, entry);
CREATE INDEX IF NOT EXISTS ledger_time ON ledger (created_at);
CREATE TABLE IF NOT EXISTS rate_windows (
    owner TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits INTEGER NOT NULL,
    PRIMARY KEY (owner, window_start)
);
CREATE TABLE IF NOT EXISTS idempotency (
    owner TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    body {blob},
    created_at {real} NOT NULL,
    PRIMARY KEY (owner, idem_key)
);
CREATE INDEX IF NOT EXISTS generations_owner_state ON generations (owner, state, priority DESC, seq);
CREATE INDEX IF NOT EXISTS generations_owner_started ON generations (owner, started_at);
CREATE INDEX IF NOT EXISTS generations_finished ON generations (finished_at);
"""


def account_tables(*, real: str, serial: str, autoincrement: str, blob: str) -> str:
    """The DDL of the account tables in a backend's spelling of a float, a generated id and bytes: one text
    for SQLite's schema and PostgreSQL's migration 3. Once released it stays as it is (a change is a new
    migration, and a new ``ADDED_COLUMNS`` entry on SQLite)."""
    return _ACCOUNT_TABLES.format(real=real, serial=serial, autoincrement=autoincrement, blob=blob)


def key_from_row(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"], name=row["name"], owner=row["owner"], secret_hash=row["secret_hash"],
        created_at=row["created_at"], admin=bool(row["admin"]), revoked_at=row["revoked_at"],
        limits=KeyLimits(**{name: row[name] for name in LIMIT_COLUMNS}),
    )


def _sum(conn: Any, owner: str, entry: Entry) -> int:
    return int(conn.execute("SELECT COALESCE(SUM(amount), 0) AS n FROM ledger WHERE owner = ? AND entry = ?",
                            (owner, entry.value)).fetchone()["n"])


def _balance(conn: Any, owner: str, credits: int | None) -> Balance:
    held = _sum(conn, owner, Entry.RESERVE) - _sum(conn, owner, Entry.RELEASE)
    return Balance(credits=credits, spent=_sum(conn, owner, Entry.CHARGE), held=held)


def _ledger_insert(conn: Any, owner: str, generation_id: str, entry: Entry, amount: int, now: float,
                   detail: str) -> None:
    """At most one entry of each kind per generation (the unique index): a retried transition bills once."""
    conn.execute(
        "INSERT INTO ledger (owner, generation_id, entry, amount, created_at, detail) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (generation_id, entry) DO NOTHING",
        (owner, generation_id, entry.value, amount, now, detail),
    )


def describe(generation: Generation) -> str:
    request = generation.request
    return (f"{generation.kind.value} {request.resolution.value} {request.aspect_ratio.value} "
            f"{request.duration_s}s {request.model}")


def admit(conn: Any, generation: Generation, for_update: str) -> None:
    """Inside the submit transaction: refuse when the owner's key is at ``max_queued`` (429) or cannot
    afford the request (402); else reserve its cost. The key row is locked (``for_update``) so concurrent
    submits of one key on several API nodes are counted one after another."""
    cost = request_cost(generation.request)
    key = conn.execute(
        "SELECT max_queued, credits FROM api_keys WHERE owner = ?" + for_update, (generation.owner,)
    ).fetchone()
    if key is not None and key["max_queued"] is not None:
        queued = conn.execute(
            "SELECT COUNT(*) AS n FROM generations WHERE owner = ? AND state = 'queued' AND deleted = 0",
            (generation.owner,),
        ).fetchone()["n"]
        if queued >= key["max_queued"]:
            raise TooManyRequests(f"this key already has {queued} generations queued (its limit is "
                                  f"{key['max_queued']}); wait for some to start", retry_after_s=5, limit="queued")
    if key is not None and key["credits"] is not None:
        available = _balance(conn, generation.owner, key["credits"]).available or 0
        if available < cost:
            raise InsufficientCredits(
                f"this request costs {units(cost):g} credits and this key has {units(max(available, 0)):g} "
                "available (its balance less what queued and running generations hold)"
            )
    _ledger_insert(conn, generation.owner, generation.id, Entry.RESERVE, cost, time.time(), describe(generation))


def settle(conn: Any, columns: str, generation_id: str, now: float) -> None:
    """Inside an ending transition: release the reservation and, when it completed, charge the delivered
    clip. Both are written once however often the transition is retried."""
    row = conn.execute(f"SELECT {columns} FROM generations WHERE id = ?", (generation_id,)).fetchone()
    if row is None:
        return
    generation = generation_from_row(dict(row))
    reserved = conn.execute("SELECT amount FROM ledger WHERE generation_id = ? AND entry = ?",
                            (generation_id, Entry.RESERVE.value)).fetchone()
    detail = describe(generation)
    if reserved is not None:
        _ledger_insert(conn, generation.owner, generation_id, Entry.RELEASE, reserved["amount"], now,
                       f"{detail}: {generation.state.value}")
    if generation.state is State.COMPLETED and generation.video_info is not None:
        info = generation.video_info
        cost = delivered_cost(generation.request, info.width, info.height, info.frames, info.fps)
        _ledger_insert(conn, generation.owner, generation_id, Entry.CHARGE, cost, now, detail)


class AccountVerbs:
    """Keys, ledger, rate windows and idempotency records (see ``core.jobstore.JobStore``)."""

    FOR_UPDATE = ""

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    # --- keys -------------------------------------------------------------------------------
    def create_key(self, key: ApiKey) -> ApiKey:
        limits = key.limits
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE name = ?", (key.name,)).fetchone():
                raise Conflict(f"a key named {key.name!r} exists")
            conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.key_id, key.name, key.owner, key.secret_hash, int(key.admin), limits.rpm, limits.concurrency,
                 limits.max_queued, limits.credits, key.created_at, key.revoked_at),
            )
        return key

    def get_key(self, key_id: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return key_from_row(row) if row else None

    def find_key(self, name_or_id: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE name = ? OR key_id = ?",
                               (name_or_id, name_or_id)).fetchone()
        return key_from_row(row) if row else None

    def list_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id").fetchall()
        return [key_from_row(row) for row in rows]

    def update_key(self, key_id: str, *, admin: bool | None = None, revoked_at: float | None = None,
                   limits: dict[str, int | None] | None = None) -> ApiKey | None:
        """Change the named limits (a value of None lifts that limit), the admin flag, or revoke."""
        sets: list[str] = []
        params: list[Any] = []
        for name, value in (limits or {}).items():
            if name not in LIMIT_COLUMNS:
                raise InvalidRequest(f"unknown limit {name!r}")
            sets.append(f"{name} = ?")
            params.append(value)
        if admin is not None:
            sets.append("admin = ?")
            params.append(int(admin))
        if revoked_at is not None:
            sets.append("revoked_at = COALESCE(revoked_at, ?)")
            params.append(revoked_at)
        with self._write() as conn:
            if sets:
                conn.execute(f"UPDATE api_keys SET {', '.join(sets)} WHERE key_id = ?", (*params, key_id))
            row = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return key_from_row(row) if row else None

    # --- ledger -----------------------------------------------------------------------------
    def balance(self, owner: str) -> Balance:
        with self._read() as conn:
            key = conn.execute("SELECT credits FROM api_keys WHERE owner = ?", (owner,)).fetchone()
            return _balance(conn, owner, key["credits"] if key else None)

    def ledger(self, owner: str | None = None, since: float = 0.0) -> list[LedgerEntry]:
        where, params = "created_at >= ?", [since]
        if owner is not None:
            where, params = where + " AND owner = ?", [since, owner]
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT id, owner, generation_id, entry, amount, created_at, detail FROM ledger WHERE {where}"
                " ORDER BY id", tuple(params),
            ).fetchall()
        return [LedgerEntry(**{**dict(row), "entry": Entry(row["entry"])}) for row in rows]

    def charged(self, generation_id: str) -> int | None:
        """Milli-units charged for a completed generation (None before completion or when it failed)."""
        with self._read() as conn:
            row = conn.execute("SELECT amount FROM ledger WHERE generation_id = ? AND entry = ?",
                               (generation_id, Entry.CHARGE.value)).fetchone()
        return int(row["amount"]) if row else None

    # --- rate windows -----------------------------------------------------------------------
    def count_request(self, owner: str, now: float | None = None) -> tuple[int, float]:
        """Count one creating request in the owner's current minute; returns (requests in it so far,
        seconds until it ends). Fixed windows: cheap, shared by all nodes, exact per window."""
        now = time.time() if now is None else now
        window = int(now // RATE_WINDOW_S) * RATE_WINDOW_S
        with self._write() as conn:
            hits = conn.execute(
                "INSERT INTO rate_windows (owner, window_start, hits) VALUES (?, ?, 1)"
                " ON CONFLICT (owner, window_start) DO UPDATE SET hits = rate_windows.hits + 1 RETURNING hits",
                (owner, window),
            ).fetchone()["hits"]
        return int(hits), window + RATE_WINDOW_S - now

    # --- idempotency ------------------------------------------------------------------------
    def begin_idempotent(self, owner: str, key: str, fingerprint: str) -> StoredResponse | None:
        """First use of ``key``: record it as in progress and answer None (run the request). A retry with
        the same fingerprint gets the stored response; another fingerprint is a 422; a retry while the
        first is still running is a 409."""
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "DELETE FROM idempotency WHERE owner = ? AND idem_key = ? AND (created_at < ?"
                " OR (status IS NULL AND created_at < ?))",
                (owner, key, now - IDEMPOTENCY_TTL_S, now - IDEMPOTENCY_STALE_S),
            )
            row = conn.execute(
                "SELECT fingerprint, status, content_type, body FROM idempotency WHERE owner = ? AND idem_key = ?"
                + self.FOR_UPDATE, (owner, key),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO idempotency (owner, idem_key, fingerprint, created_at) VALUES (?, ?, ?, ?)",
                    (owner, key, fingerprint, now),
                )
                return None
        if row["fingerprint"] != fingerprint:
            raise InvalidRequest("Idempotency-Key was already used with a different request; use a new key "
                                 "for a new request", field="Idempotency-Key")
        if row["status"] is None:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
        return StoredResponse(status=row["status"], content_type=row["content_type"],
                              body=bytes(row["body"]))

    def finish_idempotent(self, owner: str, key: str, response: StoredResponse | None) -> None:
        """Keep the first response for replays, or (``None``: it failed) forget the key so a retry runs."""
        with self._write() as conn:
            if response is None:
                conn.execute("DELETE FROM idempotency WHERE owner = ? AND idem_key = ? AND status IS NULL",
                             (owner, key))
            else:
                conn.execute(
                    "UPDATE idempotency SET status = ?, content_type = ?, body = ? WHERE owner = ? AND idem_key = ?",
                    (response.status, response.content_type, response.body, owner, key),
                )

    def _prune_accounts(self, conn: Any, now: float) -> None:
        """Housekeeping: rate windows and idempotency records past their use (the ledger is kept)."""
        conn.execute("DELETE FROM rate_windows WHERE window_start < ?", (now - 2 * RATE_WINDOW_S,))
        conn.execute("DELETE FROM idempotency WHERE created_at < ?", (now - IDEMPOTENCY_TTL_S,))

