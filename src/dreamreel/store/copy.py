"""Move a server's state from one store to another: ``dreamreel db copy --from sqlite:///... --to postgresql://...``.

Moving up from one machine to many keeps every generation, its events and its pending callbacks, with their
ids: asset keys, event ids and outbox order stay valid, so the files directory moves as it is. Rows are
copied in id order inside one target transaction, and a row already in the target (same key) is left as it
is, so a copy interrupted or run twice ends in the same state. A target that already holds generations is
refused unless the caller says so: merging two different servers is not what this is for (a row whose id
or sequence number is taken in the target is skipped and counted, not renumbered).
"""

from __future__ import annotations

from dataclasses import dataclass

from dreamreel.store.sql import SQLJobStore

TABLES: tuple[tuple[str, str], ...] = (
    ("generations", "seq"), ("events", "id"), ("outbox", "id"), ("api_keys", "key_id"), ("ledger", "id"),
)
"""``(table, order column)``: what a copy carries, keys and the usage ledger included (key hashes stay valid
when the new nodes share the old server secret). Worker rows, rate windows and idempotency records are not
copied: they describe the old server's processes and last minutes."""
SERIAL_COLUMNS: tuple[tuple[str, str], ...] = (("generations", "seq"), ("events", "id"), ("outbox", "id"),
                                              ("ledger", "id"))
"""The ordering columns that are generated ids: their sequences continue after the copied rows."""


class TargetNotEmpty(Exception):
    """The target store already holds generations (pass ``force`` to merge into it)."""


@dataclass(frozen=True)
class CopyReport:
    copied: dict[str, int]
    """Rows inserted per table."""
    skipped: dict[str, int]
    """Rows already in the target, left unchanged."""


def copy_store(source: SQLJobStore, target: SQLJobStore, *, force: bool = False) -> CopyReport:
    """Copy every generation (deleted ones too: their ids stay taken), event, outbox row, key and ledger entry."""
    with target._read() as conn:
        present = conn.execute("SELECT COUNT(*) AS n FROM generations").fetchone()["n"]
    if present and not force:
        raise TargetNotEmpty(f"the target already holds {present} generations; pass --force to merge into it")
    copied: dict[str, int] = {}
    skipped: dict[str, int] = {}
    with source._read() as src, target._write() as dst:
        for table, order in TABLES:
            rows = [dict(row) for row in src.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()]
            copied[table] = skipped[table] = 0
            for row in rows:
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                inserted = dst.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", tuple(row.values()),
                ).rowcount
                copied[table] += inserted
                skipped[table] += 1 - inserted
        target._after_copy(dst, SERIAL_COLUMNS)
    return CopyReport(copied=copied, skipped=skipped)
