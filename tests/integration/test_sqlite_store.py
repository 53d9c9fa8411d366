"""What only the SQLite store has: its file format across releases.

The verbs' behaviour (atomic claims, leases, fencing, outbox order, cancel, delete, deadlines) is checked
for every backend by ``tests/contract/``; this file keeps what is SQLite's own.
"""

from __future__ import annotations

import sqlite3
import time

from dreamreel.core.failures import REQUEST_TIMEOUT_REASON, FailureCode
from dreamreel.core.generation import Kind, State
from dreamreel.core.request import GenerationRequest
from dreamreel.store.sqlite import ADDED_COLUMNS, SCHEMA, SQLiteStore


def first_release_generations() -> str:
    """The generations table before ``kind``, ``source_id``, ``failure_code`` and ``notify_on`` existed:
    today's ``CREATE TABLE`` without the columns ``ADDED_COLUMNS`` adds on open."""
    table = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS generations"):]
    table = table[: table.index(");") + 2]
    kept = [line for line in table.splitlines() if line.strip().split(" ")[0] not in ADDED_COLUMNS]
    return "\n".join(kept).replace(",\n);", "\n);")


def test_database_from_the_first_release_is_upgraded_on_open(tmp_path) -> None:
    path = tmp_path / "old.db"
    rows = {  # id: (dialect, state, failure_reason)
        "luma-queued": ("luma", "queued", None),
        "fal-queued": ("fal", "queued", None),
        "timed-out": ("fal", "failed", REQUEST_TIMEOUT_REASON),
        "bad-keyframe": ("luma", "failed", "keyframes.frame0: image did not load"),
        "crashed": ("luma", "failed", "CUDA out of memory"),
        "cancelled": ("luma", "cancelled", "cancelled by the caller"),
    }
    request = GenerationRequest(prompt="a lighthouse", callback_url="http://hooks.example.test/cb").model_dump_json()
    now = time.time()
    with sqlite3.connect(path) as conn:
        conn.execute(first_release_generations())
        for generation_id, (dialect, state, reason) in rows.items():
            conn.execute(
                "INSERT INTO generations (id, owner, dialect, request, state, seed, created_at, updated_at,"
                " failure_reason) VALUES (?, 'o', ?, ?, ?, 1, ?, ?, ?)",
                (generation_id, dialect, request, state, now, now, reason),
            )
    conn.close()

    store = SQLiteStore(path)
    SQLiteStore(path)  # a second process opening it afterwards finds nothing left to add

    codes = {generation_id: store.get(generation_id).failure_code for generation_id in rows}
    assert codes == {
        "luma-queued": None, "fal-queued": None, "timed-out": FailureCode.REQUEST_TIMEOUT,
        "bad-keyframe": FailureCode.INPUT, "crashed": FailureCode.INTERNAL, "cancelled": FailureCode.CANCELLED,
    }
    luma, fal = store.get("luma-queued"), store.get("fal-queued")
    assert luma.notify_on == {State.RUNNING, State.COMPLETED, State.FAILED}  # what each dialect notified on then
    assert fal.notify_on == {State.COMPLETED, State.FAILED, State.CANCELLED}
    assert (luma.kind, luma.source_id) == (Kind.VIDEO, None)
    # queued jobs of the old release still run and still call back
    assert store.claim("w", 30).id == "luma-queued"
    [delivery] = store.claim_deliveries(10, 30)
    assert (delivery.generation_id, delivery.snapshot.state) == ("luma-queued", State.RUNNING)
