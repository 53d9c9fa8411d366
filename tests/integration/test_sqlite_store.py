"""The SQLite store on a real database file: atomic claims, leases, fencing, outbox order."""

from __future__ import annotations

import threading
import time

from dreamreel.core.generation import Assets, Generation, State, VideoInfo
from dreamreel.core.request import GenerationRequest
from dreamreel.store.sqlite import MAX_ATTEMPTS, SQLiteStore


def _gen(i: int, callback: str | None = None) -> Generation:
    now = time.time()
    return Generation(
        id=f"g{i}", owner="o", dialect="luma", request=GenerationRequest(prompt=f"p{i}", callback_url=callback),
        state=State.QUEUED, seed=i, created_at=now, updated_at=now,
    )


def test_concurrent_claims_hand_each_job_to_exactly_one_worker(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    for i in range(40):
        store.create(_gen(i))
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name, 30)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(f"g{i}" for i in range(40))


def test_claim_order_is_fifo_and_list_is_newest_first(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    for i in range(3):
        store.create(_gen(i))
    assert [g.id for g in store.list("o", 10, 0)] == ["g2", "g1", "g0"]
    assert store.queue_position("g2") == 2
    assert store.claim("w", 30).id == "g0"
    assert store.queue_position("g2") == 1


def test_lapsed_lease_requeues_and_fences_the_old_worker(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.create(_gen(0))
    first = store.claim("old", lease_s=0.05)
    assert first.state == State.RUNNING and first.attempts == 1
    time.sleep(0.1)
    second = store.claim("new", lease_s=30)
    assert second.id == "g0" and second.worker_id == "new" and second.attempts == 2
    assert not store.heartbeat("g0", "old", 30).owned
    assert not store.record_progress("g0", "old", 1, 2)
    info = VideoInfo(8, 8, 24, 24, 100)
    assert not store.complete("g0", "old", Assets(video="a"), info)
    assert store.complete("g0", "new", Assets(video="b"), info)
    done = store.get("g0")
    assert done.state == State.COMPLETED and done.assets.video == "b"


def test_poison_job_fails_after_max_attempts(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.create(_gen(0))
    for _ in range(MAX_ATTEMPTS):
        assert store.claim("w", lease_s=0.01) is not None
        time.sleep(0.03)
    assert store.claim("w", 30) is None
    failed = store.get("g0")
    assert failed.state == State.FAILED and "giving up" in failed.failure_reason


def test_cancel_and_delete(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.create(_gen(0))
    store.create(_gen(1))
    assert store.request_cancel("g0").state == State.CANCELLED
    running = store.claim("w", 30)
    assert running.id == "g1"
    store.delete("g1")
    assert store.get("g1") is None
    assert store.heartbeat("g1", "w", 30).cancel_requested


def test_outbox_is_written_with_transitions_and_delivered_in_order(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.create(_gen(0, callback="http://example.test/hook"))
    store.claim("w", 30)
    store.complete("g0", "w", Assets(video="v"), VideoInfo(8, 8, 24, 24, 1))
    first = store.claim_deliveries(10, lease_s=30)
    assert [d.snapshot.state for d in first] == [State.RUNNING]  # 'completed' waits behind it
    store.delivery_failed(first[0].id, "HTTP 503", retry_at=time.time() - 1)
    again = store.claim_deliveries(10, lease_s=30)
    assert [d.snapshot.state for d in again] == [State.RUNNING] and again[0].attempts == 2
    store.delivery_succeeded(again[0].id)
    last = store.claim_deliveries(10, lease_s=30)
    assert [d.snapshot.state for d in last] == [State.COMPLETED]
    assert last[0].snapshot.assets.video == "v"


def test_low_priority_runs_after_normal_and_deadlines_expire(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.create(_gen(0).evolve(priority=-1))
    store.create(_gen(1))
    store.create(_gen(2).evolve(start_deadline=time.time() - 1))  # already too late to start
    assert store.queue_position("g0") == 2  # behind g1 (normal) and g2 (normal, not yet expired)
    store.housekeep()
    expired = store.get("g2")
    assert expired.state == State.FAILED and "timed out" in expired.failure_reason
    assert store.queue_position("g1") == 0 and store.queue_position("g0") == 1
    assert store.claim("w", 30).id == "g1"
    assert store.claim("w", 30).id == "g0"
