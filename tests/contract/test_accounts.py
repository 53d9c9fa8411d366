"""The account half of the job store contract: keys, fair claim order, per-key concurrency and queue limits,
the usage ledger, rate windows and idempotency records, on every backend."""

from __future__ import annotations

import time

import pytest
from tests.contract.conftest import Opener
from tests.contract.test_job_store import LONG, VIDEO, make_gen, submit

from dreamreel.core.accounts import ApiKey, KeyLimits, StoredResponse
from dreamreel.core.errors import Conflict, InsufficientCredits, InvalidRequest, TooManyRequests
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Assets
from dreamreel.core.jobstore import JobStore
from dreamreel.core.metering import Entry, cost_milli, request_cost


def add_key(store: JobStore, name: str, **limits: int | None) -> ApiKey:
    return store.create_key(ApiKey(key_id=f"dk{name}", name=name, owner=f"key-dk{name}", secret_hash="h" * 64,
                                   created_at=time.time(), limits=KeyLimits(**limits)))


def run_to_end(store: JobStore, worker: str, how: str = "complete") -> str:
    job = store.claim(worker, LONG)
    assert job is not None
    if how == "complete":
        assert store.complete(job.id, worker, Assets(video=f"{job.id}/video.mp4"), VIDEO)
    else:
        assert store.fail(job.id, worker, FailureCode.INTERNAL, "boom")
    return job.id


def test_keys_are_stored_found_changed_and_revoked(store: JobStore, open_store: Opener) -> None:
    key = add_key(store, "alice", rpm=5)
    with pytest.raises(Conflict):
        add_key(store, "alice")
    other = open_store()  # another API node sees the same key
    assert other.get_key(key.key_id) == key
    assert other.find_key("alice") == key
    changed = store.update_key(key.key_id, limits={"rpm": None, "concurrency": 2}, admin=True)
    assert changed is not None and changed.limits == KeyLimits(concurrency=2) and changed.admin
    store.update_key(key.key_id, revoked_at=123.0)
    store.update_key(key.key_id, revoked_at=456.0)  # the first revocation time is kept
    revoked = other.get_key(key.key_id)
    assert revoked is not None and revoked.revoked_at == 123.0 and not revoked.active
    assert [k.name for k in other.list_keys()] == ["alice"]


def test_claim_interleaves_owners(store: JobStore) -> None:
    """One owner's backlog never puts another owner's next job behind all of it."""
    flood = [submit(store, n, owner="flood").id for n in range(5)]
    late = [submit(store, 10 + n, owner="late").id for n in range(2)]
    order = [run_to_end(store, "w") for _ in range(7)]
    assert order[:4] == [flood[0], late[0], flood[1], late[1]]
    assert order[4:] == flood[2:]


def test_concurrency_limit_holds_jobs_back_until_one_ends(store: JobStore, open_store: Opener) -> None:
    add_key(store, "one", concurrency=1)
    mine = [submit(store, n, owner="key-dkone").id for n in range(2)]
    other = submit(store, 5, owner="free").id
    first = store.claim("w1", LONG)
    assert first is not None and first.id == mine[0]
    second = open_store().claim("w2", LONG)  # another worker: the limited key's next job must wait
    assert second is not None and second.id == other
    assert store.claim("w3", LONG) is None
    assert store.complete(first.id, "w1", Assets(video="v.mp4"), VIDEO)
    third = store.claim("w3", LONG)
    assert third is not None and third.id == mine[1]


def test_max_queued_refuses_a_submit_beyond_it(store: JobStore) -> None:
    add_key(store, "small", max_queued=2)
    submit(store, 0, owner="key-dksmall")
    submit(store, 1, owner="key-dksmall")
    with pytest.raises(TooManyRequests):
        submit(store, 2, owner="key-dksmall")
    assert store.count("key-dksmall") == 2
    run_to_end(store, "w")  # one started and finished: room again
    submit(store, 3, owner="key-dksmall")


def test_ledger_reserves_then_charges_or_releases_once(store: JobStore) -> None:
    unit = request_cost(make_gen().request)  # the default request: 720p 16:9 5 s
    assert unit == cost_milli(1280, 720, 5) == 1778
    add_key(store, "payer", credits=3 * unit)
    owner = "key-dkpayer"
    done, failed, cancelled = (submit(store, n, owner=owner).id for n in range(3))
    with pytest.raises(InsufficientCredits):  # three are held: a fourth cannot be afforded
        submit(store, 4, owner=owner)
    assert store.balance(owner).held == 3 * unit
    job = store.claim("w", LONG)
    assert job is not None and job.id == done
    assert store.complete(done, "w", Assets(video="v.mp4"), VIDEO)
    assert not store.complete(done, "w", Assets(video="v.mp4"), VIDEO)  # a retried completion bills nothing
    run_to_end(store, "w", how="fail")
    store.request_cancel(cancelled)
    charge = cost_milli(VIDEO.width, VIDEO.height, 5)
    balance = store.balance(owner)
    assert (balance.spent, balance.held, balance.available) == (charge, 0, 3 * unit - charge)
    entries = [(e.generation_id, e.entry, e.amount) for e in store.ledger(owner)]
    assert sorted(entries) == sorted([
        (done, Entry.RESERVE, unit), (failed, Entry.RESERVE, unit), (cancelled, Entry.RESERVE, unit),
        (done, Entry.RELEASE, unit), (done, Entry.CHARGE, charge),
        (failed, Entry.RELEASE, unit), (cancelled, Entry.RELEASE, unit),
    ])
    assert store.charged(done) == charge and store.charged(failed) is None
    store.delete(done)  # the ledger outlives the generation it bills
    assert store.charged(done) == charge


def test_rate_windows_count_across_handles(store: JobStore, open_store: Opener) -> None:
    other = open_store()
    now = 1_000_040.0  # 20 s into a minute
    assert store.count_request("k", now)[0] == 1
    count, left = other.count_request("k", now + 1)
    assert count == 2 and left == pytest.approx(39.0)
    assert store.count_request("k", now + 60)[0] == 1  # the next minute starts at zero


def test_idempotency_records_replay_refuse_and_forget(store: JobStore, open_store: Opener) -> None:
    other = open_store()
    assert store.begin_idempotent("k", "abc", "fp1") is None
    with pytest.raises(Conflict):  # the first is still running
        other.begin_idempotent("k", "abc", "fp1")
    store.finish_idempotent("k", "abc", StoredResponse(201, "application/json", b'{"id":"1"}'))
    assert other.begin_idempotent("k", "abc", "fp1") == StoredResponse(201, "application/json", b'{"id":"1"}')
    with pytest.raises(InvalidRequest):
        other.begin_idempotent("k", "abc", "fp2")
    assert store.begin_idempotent("other-owner", "abc", "fp2") is None  # keys are per owner
    assert store.begin_idempotent("k", "failed", "fp") is None
    store.finish_idempotent("k", "failed", None)  # the first attempt failed: a retry runs again
    assert other.begin_idempotent("k", "failed", "fp") is None

