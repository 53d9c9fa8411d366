"""The store verbs retention and the webhook lanes use, on every backend: ``finished_before`` /
``purge_generations`` (rows gone with their events and outbox rows, unfinished ones and ledger kept) and
``defer_deliveries`` (a claimed delivery handed back without counting an attempt)."""

from __future__ import annotations

import time

from tests.contract.test_job_store import HOOK, LONG, VIDEO, submit

from dreamreel.core.generation import Assets, State
from dreamreel.core.jobstore import JobStore


def test_purge_removes_finished_generations_with_events_and_outbox_but_keeps_the_ledger(store: JobStore) -> None:
    done = submit(store, 0, callback=HOOK, notify_on=frozenset({State.COMPLETED}))
    running = submit(store, 1)
    assert store.claim("w", LONG).id == done.id and store.claim("w", LONG).id == running.id
    assert store.complete(done.id, "w", Assets(video="v.mp4"), VIDEO)
    ledger_before = store.ledger("alice")
    assert {entry.generation_id for entry in ledger_before} == {done.id, running.id}
    cutoff = time.time() + 1

    assert [g.id for g in store.finished_before(cutoff, 10)] == [done.id]
    assert store.finished_before(done.finished_at, 10) == []  # strictly before the cutoff
    assert store.purge_generations([done.id, running.id]) == [done.id]  # the running one is not finished

    assert store.get(done.id) is None and store.events(done.id) == []
    assert store.claim_deliveries(10, LONG) == []  # its pending callback went with it
    assert store.finished_before(cutoff, 10) == []
    assert store.get(running.id).state is State.RUNNING
    assert store.ledger("alice") == ledger_before
    assert store.purge_generations([]) == [] and store.purge_generations([done.id]) == []


def test_a_deferred_delivery_comes_back_later_without_counting_an_attempt(store: JobStore) -> None:
    generation = submit(store, 0, callback=HOOK, notify_on=frozenset({State.RUNNING}))
    store.claim("w", LONG)
    (first,) = store.claim_deliveries(10, LONG)
    assert first.attempts == 1
    store.defer_deliveries([first.id], time.time() + 0.3)
    assert store.claim_deliveries(10, LONG) == []  # not due yet
    time.sleep(0.35)
    (again,) = store.claim_deliveries(10, LONG)
    assert (again.id, again.generation_id, again.attempts) == (first.id, generation.id, 1)
