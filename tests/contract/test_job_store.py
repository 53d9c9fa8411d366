"""The job store contract, executable: ``core/jobstore.py`` says what every verb promises, this checks it.

Every backend in ``conftest.BACKENDS`` (SQLite today, PostgreSQL later) must pass this suite unchanged;
nothing here may depend on how a backend stores its rows. Tests talk to the store only through the
``JobStore`` verbs, and use a second handle (``open_store()``) where another process's view matters.
Leases are a few hundredths of a second, so a lapse costs one short sleep.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import ALLOWED_TRANSITIONS, Assets, Generation, Kind, State, VideoInfo, check_transition
from dreamreel.core.jobstore import MAX_ATTEMPTS, JobStore, WorkerInfo
from dreamreel.core.request import GenerationRequest

LEASE = 0.05
"""A lease short enough to let lapse in a test; nothing asserted about its worker before it lapses."""
LAPSE = 0.08
"""Sleep that outlasts :data:`LEASE`."""
HOLD = 0.3
"""A short lease, or a start deadline, that a test still acts within before it lapses (on a loaded machine)."""
LONG = 30.0
"""A lease that does not lapse during a test."""
HOOK = "http://hooks.example.test/callback"
VIDEO = VideoInfo(width=64, height=64, fps=24, frames=25, size_bytes=1234)
ALL_STATES = frozenset(State)


def make_gen(
    n: int = 0, *, owner: str = "alice", callback: str | None = None, notify_on: frozenset[State] = frozenset(),
    **extra: Any,
) -> Generation:
    return Generation.new(
        owner=owner, dialect="luma", request=GenerationRequest(prompt=f"prompt {n}", callback_url=callback),
        seed=n, notify_on=notify_on, **extra,
    )


def submit(store: JobStore, n: int = 0, **kwargs: Any) -> Generation:
    return store.create(make_gen(n, **kwargs))


def sleep_past(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()) + 0.02)


def state_of(store: JobStore, generation_id: str) -> State:
    generation = store.get(generation_id)
    assert generation is not None, f"{generation_id} vanished"
    return generation.state


def drain(store: JobStore, lease_s: float = LONG) -> list:
    """Claim every due delivery, marking each delivered, until none is due; the deliveries in order."""
    taken = []
    while batch := store.claim_deliveries(100, lease_s):
        for delivery in batch:
            store.delivery_succeeded(delivery.id)
        taken.extend(batch)
    return taken


# --- 1. claim atomicity ---------------------------------------------------------------------------

JOBS = 30
CLAIMERS = 3


def _claim_until_empty_in_child(open_store: Callable[[], JobStore], name: str, go: Any, out: Any) -> None:
    try:
        handle = open_store()
        go.wait(10)
        claimed = []
        while (job := handle.claim(name, LONG)) is not None:
            claimed.append(job.id)
        handle.close()
        out.put((name, claimed, None))
    except BaseException:  # report, or the parent would only see a missing result
        out.put((name, [], traceback.format_exc()))


def test_racing_worker_processes_claim_every_job_exactly_once(store: JobStore, open_store) -> None:
    ids = {submit(store, n).id for n in range(JOBS)}
    ctx = multiprocessing.get_context("fork")  # children open their own handle on the same database
    go, out = ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=_claim_until_empty_in_child, args=(open_store, f"proc-{k}", go, out))
                for k in range(CLAIMERS)]
    for child in children:
        child.start()
    go.set()
    results = [out.get(timeout=60) for _ in children]
    for child in children:
        child.join(10)
    errors = [error for _, _, error in results if error]
    assert not errors, errors[0]
    claimed = [(name, job_id) for name, jobs, _ in results for job_id in jobs]
    assert sorted(job_id for _, job_id in claimed) == sorted(ids)  # none twice, none lost
    for name, job_id in claimed:
        job = store.get(job_id)
        assert (job.state, job.worker_id, job.attempts) == (State.RUNNING, name, 1)
    assert store.claim("late", LONG) is None


def test_racing_threads_sharing_one_handle_claim_every_job_exactly_once(store: JobStore) -> None:
    """One handle is shared by an API process's thread pool and a worker's heartbeat thread."""
    ids = {submit(store, n).id for n in range(JOBS)}
    claimed: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(CLAIMERS)

    def claimer(name: str) -> None:
        try:
            start.wait()
            while (job := store.claim(name, LONG)) is not None:
                claimed.append(job.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"thread-{k}",)) for k in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(claimed) == sorted(ids)


# --- 2. claim order ---------------------------------------------------------------------------------

def test_claim_takes_highest_priority_then_oldest_and_queue_position_agrees(store: JobStore) -> None:
    priorities = [0, -1, 5, 0, 5, -1, 0, 1]
    jobs = [submit(store, n, priority=p) for n, p in enumerate(priorities)]
    expected = [job.id for job in sorted(jobs, key=lambda job: (-job.priority, job.seed))]
    while expected:
        assert [store.queue_position(job_id) for job_id in expected] == list(range(len(expected)))
        taken = store.claim("w", LONG)
        assert taken is not None and taken.id == expected.pop(0)
        assert store.queue_position(taken.id) is None  # running: not queued
    assert store.claim("w", LONG) is None
    assert store.queue_position("no-such-generation") is None


def test_queue_position_skips_cancelled_deleted_and_expired_jobs(store: JobStore) -> None:
    cancelled = submit(store, 0)
    deleted = submit(store, 1)
    expired = submit(store, 2, start_deadline=time.time() - 1)
    last = submit(store, 3)
    store.request_cancel(cancelled.id)
    store.delete(deleted.id)
    store.housekeep()
    assert store.queue_position(last.id) == 0
    assert [store.queue_position(job.id) for job in (cancelled, deleted, expired)] == [None, None, None]
    assert store.claim("w", LONG).id == last.id


# --- 3. lease expiry ---------------------------------------------------------------------------------

def test_lapsed_lease_requeues_on_housekeep_and_another_worker_gets_it(store: JobStore) -> None:
    job = submit(store)
    first = store.claim("a", HOLD)
    assert (first.id, first.state, first.worker_id, first.attempts) == (job.id, State.RUNNING, "a", 1)
    assert store.record_preview(job.id, "a", "previews/attempt-1.mp4")
    sleep_past(first.lease_expires_at)
    store.housekeep()
    requeued = store.get(job.id)
    assert (requeued.state, requeued.worker_id, requeued.attempts) == (State.QUEUED, None, 1)
    assert store.queue_position(job.id) == 0
    second = store.claim("b", LONG)
    assert (second.id, second.state, second.worker_id, second.attempts) == (job.id, State.RUNNING, "b", 2)
    assert second.assets.progress_video is None  # the dead attempt's preview is dropped


def test_claim_reclaims_a_lapsed_lease_by_itself(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", LEASE)
    time.sleep(LAPSE)
    second = store.claim("b", LONG)
    assert second is not None and (second.id, second.worker_id, second.attempts) == (job.id, "b", 2)


def test_heartbeat_keeps_the_lease(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", HOLD)
    beat = store.heartbeat(job.id, "a", LONG)
    assert beat.owned and not beat.cancel_requested
    time.sleep(HOLD + 0.02)
    store.housekeep()
    assert store.claim("b", LONG) is None
    kept = store.get(job.id)
    assert (kept.state, kept.worker_id, kept.attempts) == (State.RUNNING, "a", 1)


# --- 4. attempt limit --------------------------------------------------------------------------------

def test_job_whose_workers_keep_dying_fails_worker_lost_after_max_attempts(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=frozenset({State.FAILED}))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        taken = store.claim(f"w{attempt}", LEASE)
        assert taken is not None and (taken.id, taken.attempts) == (job.id, attempt)
        time.sleep(LAPSE)
    store.housekeep()
    failed = store.get(job.id)
    assert (failed.state, failed.failure_code, failed.attempts) == (State.FAILED, FailureCode.WORKER_LOST, MAX_ATTEMPTS)
    assert store.claim("w", LONG) is None  # not re-queued
    store.housekeep()
    assert store.get(job.id).state == State.FAILED
    [delivery] = drain(store)  # housekeeping's transition writes its outbox row too
    assert (delivery.snapshot.state, delivery.snapshot.failure_code) == (State.FAILED, FailureCode.WORKER_LOST)


# --- 5. fencing --------------------------------------------------------------------------------------

def _stale_worker_verbs(job_id: str, worker: str) -> dict[str, Callable[[JobStore], bool]]:
    return {
        "complete": lambda s: s.complete(job_id, worker, Assets(video=f"{worker}.mp4"), VIDEO),
        "fail": lambda s: s.fail(job_id, worker, FailureCode.INTERNAL, "stale"),
        "record_progress": lambda s: s.record_progress(job_id, worker, 7, 8),
        "record_preview": lambda s: s.record_preview(job_id, worker, f"{worker}-preview.mp4"),
        "heartbeat": lambda s: s.heartbeat(job_id, worker, LONG).owned,
        "release": lambda s: s.release(job_id, worker),
        "finish_cancelled": lambda s: s.finish_cancelled(job_id, worker),
    }


def test_worker_whose_lease_moved_on_is_fenced_out_and_the_new_owner_wins(store: JobStore) -> None:
    job = submit(store)
    taken = store.claim("a", HOLD)
    assert store.record_progress(job.id, "a", 3, 8)
    sleep_past(taken.lease_expires_at)
    store.housekeep()
    queued = store.get(job.id)
    for verb, call in _stale_worker_verbs(job.id, "a").items():  # between re-queue and the next claim
        assert call(store) is False, f"stale worker's {verb} accepted on a queued job"
        assert store.get(job.id) == queued, f"stale worker's {verb} changed a queued job"
    assert store.claim("b", LONG).id == job.id
    assert store.record_progress(job.id, "b", 1, 8)
    assert store.record_preview(job.id, "b", "b-preview.mp4")
    owned = store.get(job.id)
    for verb, call in _stale_worker_verbs(job.id, "a").items():
        assert call(store) is False, f"stale worker's {verb} accepted"
        assert store.get(job.id) == owned, f"stale worker's {verb} changed the new owner's job"
    assert store.heartbeat(job.id, "b", LONG).owned
    assert store.complete(job.id, "b", Assets(video="b.mp4"), VIDEO)
    done = store.get(job.id)
    assert (done.state, done.assets.video, done.video_info) == (State.COMPLETED, "b.mp4", VIDEO)
    for verb, call in {**_stale_worker_verbs(job.id, "a"), **_stale_worker_verbs(job.id, "b")}.items():
        assert call(store) is False, f"{verb} accepted on a completed job"
    assert store.get(job.id) == done


def test_a_worker_cannot_touch_a_job_it_never_held(store: JobStore) -> None:
    job = submit(store)
    store.claim("owner", LONG)
    before = store.get(job.id)
    for verb, call in _stale_worker_verbs(job.id, "intruder").items():
        assert call(store) is False, f"{verb} by a worker that never held the job accepted"
    assert store.get(job.id) == before


# --- 6. release --------------------------------------------------------------------------------------

def test_release_hands_the_job_back_without_counting_the_attempt(store: JobStore) -> None:
    job = submit(store)
    for _ in range(MAX_ATTEMPTS + 1):  # a clean shutdown, again and again, never makes a poison job
        taken = store.claim("w", LONG)
        assert (taken.id, taken.attempts) == (job.id, 1)
        assert store.release(job.id, "w")
        back = store.get(job.id)
        assert (back.state, back.worker_id, back.attempts) == (State.QUEUED, None, 0)
        assert store.queue_position(job.id) == 0
    assert store.release(job.id, "w") is False  # queued: nothing to release
    store.housekeep()
    assert store.get(job.id).state == State.QUEUED
    assert store.claim("other", LONG).worker_id == "other"


def test_release_after_a_lapse_still_counts_the_lapsed_attempt(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", LEASE)
    time.sleep(LAPSE)
    store.claim("b", LONG)
    assert store.release(job.id, "b")
    assert store.get(job.id).attempts == 1  # a's lapse counts, b's clean hand-back does not


# --- 7. outbox ---------------------------------------------------------------------------------------

LUMA_LIKE = frozenset({State.RUNNING, State.COMPLETED, State.FAILED})


def test_transitions_write_deliveries_holding_their_snapshot_in_order(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=LUMA_LIKE, request_id="req-7")
    assert store.get(job.id).request_id == "req-7" and submit(store, 1).request_id is None
    assert store.claim_deliveries(10, LONG) == []  # queued is not in notify_on
    store.claim("w", LONG)
    store.record_progress(job.id, "w", 4, 8)
    assert store.complete(job.id, "w", Assets(video="v.mp4", image="t.jpg"), VIDEO)
    running, completed = drain(store)
    assert [d.generation_id for d in (running, completed)] == [job.id, job.id]
    assert [d.url for d in (running, completed)] == [HOOK, HOOK]
    assert running.id != completed.id
    assert (running.snapshot.state, running.snapshot.worker_id, running.snapshot.attempts) == (State.RUNNING, "w", 1)
    assert running.snapshot.assets.video is None and running.snapshot.video_info is None
    assert (completed.snapshot.state, completed.snapshot.assets.video, completed.snapshot.video_info) == (
        State.COMPLETED, "v.mp4", VIDEO)
    assert completed.snapshot.request == job.request and completed.snapshot.id == job.id
    assert running.snapshot.request_id == completed.snapshot.request_id == "req-7"  # the callbacks' log lines
    assert running.attempts == completed.attempts == 1


def test_second_delivery_waits_while_the_first_retries_and_goes_once_it_succeeded(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=LUMA_LIKE)
    store.claim("w", LONG)
    store.complete(job.id, "w", Assets(video="v.mp4"), VIDEO)
    for attempt in (1, 2, 3):
        [first] = store.claim_deliveries(10, LONG)  # never the 'completed' one beside it
        assert (first.snapshot.state, first.attempts) == (State.RUNNING, attempt)
        store.delivery_failed(first.id, "HTTP 503", retry_at=time.time())
    [first] = store.claim_deliveries(10, LONG)
    assert store.claim_deliveries(10, LONG) == []  # leased, and the next waits behind it
    store.delivery_succeeded(first.id)
    [second] = store.claim_deliveries(10, LONG)
    assert (second.snapshot.state, second.attempts) == (State.COMPLETED, 1)
    store.delivery_succeeded(second.id)
    assert store.claim_deliveries(10, LONG) == []


def test_abandoned_delivery_lets_the_next_one_go(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=LUMA_LIKE)
    store.claim("w", LONG)
    store.fail(job.id, "w", FailureCode.INTERNAL, "boom")
    [first] = store.claim_deliveries(10, LONG)
    assert first.snapshot.state == State.RUNNING
    store.delivery_failed(first.id, "connection refused", retry_at=None)
    [second] = store.claim_deliveries(10, LONG)
    assert (second.snapshot.state, second.snapshot.failure_code) == (State.FAILED, FailureCode.INTERNAL)
    store.delivery_succeeded(second.id)
    assert store.claim_deliveries(10, LONG) == []  # the abandoned one is not retried


def test_delivery_not_yet_due_is_not_handed_out(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=LUMA_LIKE)
    store.claim("w", LONG)
    [first] = store.claim_deliveries(10, LONG)
    store.delivery_failed(first.id, "HTTP 500", retry_at=time.time() + LONG)
    store.complete(job.id, "w", Assets(video="v.mp4"), VIDEO)
    assert store.claim_deliveries(10, LONG) == []  # the retry is not due, and 'completed' waits for it


def test_claimed_delivery_is_hidden_from_another_claimer_until_its_lease_lapses(store: JobStore, open_store) -> None:
    other = open_store()  # another process's webhook sender
    held, dropped = (submit(store, n, callback=HOOK, notify_on=LUMA_LIKE) for n in range(2))
    store.claim("w", LONG)
    store.claim("w", LONG)
    [sending] = store.claim_deliveries(1, LONG)
    [lost] = store.claim_deliveries(1, LEASE)
    assert (sending.generation_id, lost.generation_id) == (held.id, dropped.id)
    assert other.claim_deliveries(10, LONG) == []
    time.sleep(LAPSE)  # the sender of the second died without an answer: that one is due again
    [again] = other.claim_deliveries(10, LONG)
    assert (again.id, again.generation_id, again.attempts) == (lost.id, dropped.id, 2)
    assert store.claim_deliveries(10, LONG) == []


def test_deliveries_of_different_generations_go_out_together_oldest_first(store: JobStore) -> None:
    jobs = [submit(store, n, callback=f"{HOOK}/{n}", notify_on=LUMA_LIKE) for n in range(3)]
    for _ in jobs:
        taken = store.claim("w", LONG)
        store.complete(taken.id, "w", Assets(video="v.mp4"), VIDEO)
    assert [d.generation_id for d in store.claim_deliveries(2, LONG)] == [jobs[0].id, jobs[1].id]  # limit kept
    batch = store.claim_deliveries(10, LONG)
    assert [(d.generation_id, d.snapshot.state) for d in batch] == [(jobs[2].id, State.RUNNING)]
    for delivery in batch:
        store.delivery_succeeded(delivery.id)
    [late] = store.claim_deliveries(10, LONG)
    assert (late.generation_id, late.url, late.snapshot.state) == (jobs[2].id, f"{HOOK}/2", State.COMPLETED)


def test_only_transitions_in_notify_on_and_with_a_callback_write_deliveries(store: JobStore) -> None:
    done_only = submit(store, 0, callback=HOOK, notify_on=frozenset({State.COMPLETED}))
    silent = submit(store, 1, callback=None, notify_on=ALL_STATES)
    unwanted = submit(store, 2, callback=HOOK, notify_on=frozenset())
    for _ in range(3):
        taken = store.claim("w", LONG)
        store.complete(taken.id, "w", Assets(video="v.mp4"), VIDEO)
    assert [(d.generation_id, d.snapshot.state) for d in drain(store)] == [(done_only.id, State.COMPLETED)]
    assert all(store.get(job.id).state == State.COMPLETED for job in (silent, unwanted))


def test_requeue_is_a_transition_that_notifies_when_queued_is_in_notify_on(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=frozenset({State.QUEUED}))
    assert drain(store) == []  # create is the first state, not a transition
    store.claim("a", LONG)
    store.release(job.id, "a")
    store.claim("b", LEASE)
    time.sleep(LAPSE)
    store.housekeep()
    assert [(d.generation_id, d.snapshot.state) for d in drain(store)] == [(job.id, State.QUEUED)] * 2


# --- 8. cancel ---------------------------------------------------------------------------------------

def test_cancel_of_a_queued_job_is_immediate(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=ALL_STATES - {State.QUEUED})
    cancelled = store.request_cancel(job.id)
    assert (cancelled.state, cancelled.failure_code) == (State.CANCELLED, FailureCode.CANCELLED)
    assert store.get(job.id) == cancelled
    assert store.claim("w", LONG) is None
    assert [d.snapshot.state for d in drain(store)] == [State.CANCELLED]


def test_cancel_of_a_running_job_is_relayed_to_its_worker_who_finishes_it(store: JobStore) -> None:
    job = submit(store, callback=HOOK, notify_on=ALL_STATES - {State.QUEUED})
    store.claim("w", LONG)
    asked = store.request_cancel(job.id)
    assert (asked.state, asked.cancel_requested) == (State.RUNNING, True)
    beat = store.heartbeat(job.id, "w", LONG)
    assert beat.owned and beat.cancel_requested
    assert store.finish_cancelled(job.id, "w")
    done = store.get(job.id)
    assert (done.state, done.failure_code) == (State.CANCELLED, FailureCode.CANCELLED)
    assert [d.snapshot.state for d in drain(store)] == [State.RUNNING, State.CANCELLED]


@pytest.mark.parametrize("end", [State.COMPLETED, State.FAILED, State.CANCELLED])
def test_cancel_leaves_a_finished_job_alone(store: JobStore, end: State) -> None:
    job = submit(store)
    store.claim("w", LONG)
    if end == State.COMPLETED:
        store.complete(job.id, "w", Assets(video="v.mp4"), VIDEO)
    elif end == State.FAILED:
        store.fail(job.id, "w", FailureCode.INPUT, "bad keyframe")
    else:
        store.request_cancel(job.id)
        store.finish_cancelled(job.id, "w")
    before = store.get(job.id)
    after = store.request_cancel(job.id)
    assert after is not None and after.state == end and after.failure_code == before.failure_code
    assert store.get(job.id).state == end
    assert store.request_cancel("no-such-generation") is None


# --- 9. delete ---------------------------------------------------------------------------------------

def test_deleted_queued_job_is_hidden_everywhere_and_never_runs(store: JobStore, open_store) -> None:
    keep = submit(store, 0)
    gone = submit(store, 1)
    as_it_was = store.delete(gone.id)
    assert as_it_was is not None and (as_it_was.id, as_it_was.state) == (gone.id, State.QUEUED)
    for view in (store, open_store()):
        assert view.get(gone.id) is None
        assert [g.id for g in view.list("alice", 10, 0)] == [keep.id]
        assert view.count("alice") == 1
    assert store.claim("w", LONG).id == keep.id
    assert store.claim("w", LONG) is None
    assert store.delete(gone.id) is None  # already gone
    assert store.delete("no-such-generation") is None


def test_deleted_running_job_is_asked_to_stop(store: JobStore) -> None:
    job = submit(store)
    store.claim("w", LONG)
    as_it_was = store.delete(job.id)
    assert as_it_was is not None and as_it_was.state == State.RUNNING
    assert store.get(job.id) is None and store.list("alice", 10, 0) == [] and store.count("alice") == 0
    beat = store.heartbeat(job.id, "w", LONG)
    assert beat.owned and beat.cancel_requested
    assert store.finish_cancelled(job.id, "w")
    assert store.get(job.id) is None


def test_deleted_generation_notifies_nothing_more(store: JobStore) -> None:
    finished = submit(store, 0, callback=HOOK, notify_on=ALL_STATES)
    running = submit(store, 1, callback=HOOK, notify_on=ALL_STATES)
    queued = submit(store, 2, callback=HOOK, notify_on=ALL_STATES)
    assert [store.claim("w", LONG).id for _ in range(2)] == [finished.id, running.id]
    assert store.complete(finished.id, "w", Assets(video="v.mp4"), VIDEO)
    drain(store)
    store.delete(queued.id)
    store.delete(running.id)
    store.delete(finished.id)
    assert store.finish_cancelled(running.id, "w")  # its worker still stops it, fenced as usual
    assert drain(store) == []


def test_lapsed_lease_on_a_cancelled_or_deleted_job_ends_it_cancelled_instead_of_a_rerun(store: JobStore) -> None:
    cancelled = submit(store, 0, callback=HOOK, notify_on=frozenset({State.CANCELLED}))
    deleted = submit(store, 1)
    for job in (cancelled, deleted):
        assert store.claim("dead", LEASE).id == job.id
    store.request_cancel(cancelled.id)
    store.delete(deleted.id)
    time.sleep(LAPSE)
    store.housekeep()
    after = store.get(cancelled.id)
    assert after.state == State.CANCELLED and after.failure_code == FailureCode.CANCELLED
    assert store.claim("w", LONG) is None  # neither is run again
    assert store.queue_position(deleted.id) is None
    assert [(d.generation_id, d.snapshot.state) for d in drain(store)] == [(cancelled.id, State.CANCELLED)]


# --- 10. start deadline ------------------------------------------------------------------------------

def test_queued_job_past_its_start_deadline_fails_request_timeout(store: JobStore) -> None:
    deadline = time.time() + HOLD
    late = submit(store, 0, start_deadline=deadline, callback=HOOK, notify_on=ALL_STATES)
    released = submit(store, 1, start_deadline=deadline, priority=1)
    patient = submit(store, 2)
    assert store.claim("w", LONG).id == released.id
    assert store.release(released.id, "w")  # back in the queue: its deadline applies again
    store.housekeep()
    assert [state_of(store, job.id) for job in (late, released)] == [State.QUEUED, State.QUEUED]  # not yet
    sleep_past(deadline)
    store.housekeep()
    for job in (late, released):
        expired = store.get(job.id)
        assert (expired.state, expired.failure_code) == (State.FAILED, FailureCode.REQUEST_TIMEOUT)
    assert store.claim("w", LONG).id == patient.id
    [delivery] = drain(store)
    assert (delivery.snapshot.state, delivery.snapshot.failure_code) == (State.FAILED, FailureCode.REQUEST_TIMEOUT)


def test_claim_never_starts_a_job_past_its_deadline_and_a_running_one_is_not_timed_out(store: JobStore) -> None:
    deadline = time.time() + HOLD
    running = submit(store, 0, start_deadline=deadline)
    expired = submit(store, 1, start_deadline=deadline)
    assert store.claim("w", LONG).id == running.id
    sleep_past(deadline)
    assert store.claim("w", LONG) is None  # claim housekeeps first
    assert store.get(expired.id).failure_code == FailureCode.REQUEST_TIMEOUT
    store.housekeep()
    assert store.get(running.id).state == State.RUNNING  # the deadline is for starting, not finishing
    assert store.complete(running.id, "w", Assets(video="v.mp4"), VIDEO)


# --- 11. transitions ---------------------------------------------------------------------------------

class Watched:
    """The store, with every generation's state read back after each verb and each change checked against
    ``ALLOWED_TRANSITIONS``; ``paths`` keeps the states each generation went through."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.paths: dict[str, list[State]] = {}

    def submit(self, n: int, **kwargs: Any) -> str:
        job = self.store.create(make_gen(n, **kwargs))
        self.paths[job.id] = [state_of(self.store, job.id)]
        assert self.paths[job.id] == [State.QUEUED]
        return job.id

    def __getattr__(self, verb: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            answer = getattr(self.store, verb)(*args)
            for job_id, path in self.paths.items():
                now = self.store.get(job_id)
                if now is not None and now.state != path[-1]:
                    check_transition(path[-1], now.state)
                    path.append(now.state)
            return answer

        return call


def _scenario_lapse_then_complete(w: Watched) -> list[State]:
    job = w.submit(0)
    w.claim("a", LEASE)
    time.sleep(LAPSE)
    w.housekeep()
    w.claim("b", HOLD)
    assert w.complete(job, "b", Assets(video="v"), VIDEO)
    assert not w.release(job, "b") and not w.fail(job, None, FailureCode.INTERNAL, "late")
    time.sleep(HOLD + 0.02)  # a finished job holds no lease that could lapse
    w.housekeep()
    return w.paths[job]


def _scenario_release_then_fail(w: Watched) -> list[State]:
    job = w.submit(0)
    w.claim("a", LONG)
    w.release(job, "a")
    w.claim("b", HOLD)
    assert w.fail(job, "b", FailureCode.INTERNAL, "boom")
    assert not w.complete(job, "b", Assets(video="v"), VIDEO) and not w.finish_cancelled(job, "b")
    time.sleep(HOLD + 0.02)
    w.housekeep()
    w.request_cancel(job)
    return w.paths[job]


def _scenario_queued_ends(w: Watched) -> list[State]:
    failed = w.submit(0)
    cancelled = w.submit(1)
    assert not w.complete(failed, "w", Assets(video="v"), VIDEO)  # never claimed by w
    assert not w.finish_cancelled(cancelled, "w")
    assert w.fail(failed, None, FailureCode.INPUT, "bad input")  # unfenced fail of a queued job
    w.request_cancel(cancelled)
    assert w.claim("w", LONG) is None
    w.request_cancel(failed)
    return w.paths[failed] + w.paths[cancelled]


def _scenario_poison(w: Watched) -> list[State]:
    job = w.submit(0)
    for attempt in range(MAX_ATTEMPTS):
        w.claim(f"w{attempt}", LEASE)
        time.sleep(LAPSE)
        w.housekeep()
    w.claim("late", LONG)
    return w.paths[job]


def _scenario_cancel_running(w: Watched) -> list[State]:
    job = w.submit(0)
    w.claim("w", LONG)
    w.request_cancel(job)
    w.heartbeat(job, "w", LONG)
    w.record_progress(job, "w", 1, 2)
    assert w.finish_cancelled(job, "w")
    assert not w.complete(job, "w", Assets(video="v"), VIDEO)
    return w.paths[job]


def _scenario_deadline(w: Watched) -> list[State]:
    deadline = time.time() + HOLD
    job = w.submit(0, start_deadline=deadline)
    w.claim("w", LEASE)
    time.sleep(LAPSE)  # the lease lapses while running...
    w.housekeep()
    sleep_past(deadline)  # ...then the job sits queued past its deadline
    w.housekeep()
    w.claim("w", LONG)
    return w.paths[job]


Q, R, C, F, X = State.QUEUED, State.RUNNING, State.COMPLETED, State.FAILED, State.CANCELLED


@pytest.mark.parametrize(("scenario", "expected"), [
    (_scenario_lapse_then_complete, [Q, R, Q, R, C]),
    (_scenario_release_then_fail, [Q, R, Q, R, F]),
    (_scenario_queued_ends, [Q, F, Q, X]),
    (_scenario_poison, [Q] + [R, Q] * (MAX_ATTEMPTS - 1) + [R, F]),
    (_scenario_cancel_running, [Q, R, X]),
    (_scenario_deadline, [Q, R, Q, F]),
], ids=lambda value: value.__name__.removeprefix("_scenario_") if callable(value) else None)
def test_every_verb_moves_states_only_along_allowed_transitions(
    store: JobStore, scenario: Callable[[Watched], list[State]], expected: list[State]
) -> None:
    assert scenario(Watched(store)) == expected


def test_the_transition_table_the_suite_checks_against() -> None:
    assert all(not ALLOWED_TRANSITIONS[state] for state in State if state.is_terminal)
    with pytest.raises(ValueError):
        check_transition(State.COMPLETED, State.QUEUED)


# --- 12. create, get, list, count, events -------------------------------------------------------------

def test_created_generation_reads_back_whole_from_another_handle(store: JobStore, open_store) -> None:
    job = make_gen(
        7, owner="carol", callback=HOOK, notify_on=frozenset({State.COMPLETED, State.CANCELLED}), priority=-1,
        start_deadline=time.time() + 3600, kind=Kind.UPSCALE, source_id="earlier-clip",
    )
    assert store.create(job) == job
    assert open_store().get(job.id) == job  # durable and visible to another process once create returns
    assert store.get("no-such-generation") is None


def test_list_is_newest_first_owner_scoped_and_paged(store: JobStore) -> None:
    alice = [submit(store, n, owner="alice").id for n in range(5)]
    bob = [submit(store, 10 + n, owner="bob").id for n in range(2)]
    newest_first = alice[::-1]
    assert [g.id for g in store.list("alice", 10, 0)] == newest_first
    assert [g.id for g in store.list("alice", 2, 1)] == newest_first[1:3]
    assert [g.id for g in store.list("alice", 10, 5)] == []
    assert [g.id for g in store.list("bob", 10, 0)] == bob[::-1]
    assert (store.count("alice"), store.count("bob"), store.count("nobody")) == (5, 2, 0)
    assert store.list("nobody", 10, 0) == []
    store.claim("w", LONG)  # running and finished ones stay listed in submission order
    store.complete(alice[0], "w", Assets(video="v"), VIDEO)
    assert [g.id for g in store.list("alice", 10, 0)] == newest_first


def test_events_are_ordered_per_generation_and_filtered_by_after_id(store: JobStore) -> None:
    job = submit(store, 0)
    other = submit(store, 1)
    [accepted] = store.events(job.id)  # create writes its "accepted" line
    for n in range(3):
        store.add_event(job.id, "INFO", f"step {n}")
        store.add_event(other.id, "WARNING", f"other {n}")
    lines = store.events(job.id)
    assert lines[0] == accepted and [line.message for line in lines[1:]] == ["step 0", "step 1", "step 2"]
    assert all(line.generation_id == job.id and line.level == "INFO" for line in lines[1:])
    assert [line.id for line in lines] == sorted({line.id for line in lines})
    assert [line.timestamp for line in lines] == sorted(line.timestamp for line in lines)
    assert store.events(job.id, after_id=lines[1].id) == lines[2:]
    assert store.events(job.id, after_id=lines[-1].id) == []
    assert [line.message for line in store.events(other.id)][1:] == ["other 0", "other 1", "other 2"]
    assert store.events("no-such-generation") == []


def test_add_event_is_not_fenced(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", LEASE)
    time.sleep(LAPSE)
    store.claim("b", LONG)
    before = len(store.events(job.id))
    store.add_event(job.id, "INFO", "a line from the lapsed attempt")
    assert store.events(job.id)[-1].message == "a line from the lapsed attempt"
    assert len(store.events(job.id)) == before + 1


# --- 13. workers -------------------------------------------------------------------------------------

def worker_info(worker_id: str, *, seen_ago: float = 0.0, **changes: Any) -> WorkerInfo:
    now = time.time()
    fields: dict[str, Any] = dict(worker_id=worker_id, host="gpu-node-1", pid=4242, device="cuda:0",
                                  models=(), current_job=None, started_at=now - 60, last_seen=now - seen_ago)
    return WorkerInfo(**{**fields, **changes})


def test_announced_worker_reads_back_whole_from_another_handle(store: JobStore, open_store) -> None:
    info = worker_info("w1", models=("ray-2", "ray-flash-2"), current_job="gen-1")
    store.announce_worker(info)
    assert open_store().list_workers() == [info]
    assert store.list_workers(alive_within_s=LONG) == [info]


def test_announce_again_updates_the_one_row_of_that_worker(store: JobStore) -> None:
    store.announce_worker(worker_info("w1", seen_ago=5))
    store.announce_worker(worker_info("w2", seen_ago=5))
    later = worker_info("w1", models=("ray-2",), current_job="gen-7", pid=99)
    store.announce_worker(later)
    workers = store.list_workers()
    assert [w.worker_id for w in workers] == ["w1", "w2"] and workers[0] == later
    idle = worker_info("w1", models=("ray-2",), current_job=None)
    store.announce_worker(idle)
    assert store.list_workers()[0] == idle and len(store.list_workers()) == 2


def test_workers_are_listed_newest_heartbeat_first(store: JobStore) -> None:
    for worker_id, seen_ago in [("old", 30.0), ("new", 0.0), ("mid", 10.0)]:
        store.announce_worker(worker_info(worker_id, seen_ago=seen_ago))
    assert [w.worker_id for w in store.list_workers()] == ["new", "mid", "old"]
    store.announce_worker(worker_info("old", seen_ago=-1.0))  # its heartbeat is now the newest
    assert [w.worker_id for w in store.list_workers()] == ["old", "new", "mid"]


def test_alive_window_leaves_out_workers_not_seen_within_it(store: JobStore) -> None:
    store.announce_worker(worker_info("fresh", seen_ago=1.0))
    store.announce_worker(worker_info("stale", seen_ago=120.0))
    assert [w.worker_id for w in store.list_workers(alive_within_s=LONG)] == ["fresh"]
    assert [w.worker_id for w in store.list_workers(alive_within_s=600.0)] == ["fresh", "stale"]
    assert [w.worker_id for w in store.list_workers()] == ["fresh", "stale"]
    assert store.list_workers(alive_within_s=0.5) == []


def test_forget_worker_removes_only_that_worker(store: JobStore, open_store) -> None:
    store.announce_worker(worker_info("w1"))
    store.announce_worker(worker_info("w2", seen_ago=1.0))
    store.forget_worker("w1")
    assert [w.worker_id for w in open_store().list_workers()] == ["w2"]
    store.forget_worker("w1")  # already gone: nothing happens
    store.forget_worker("never-announced")
    assert [w.worker_id for w in store.list_workers()] == ["w2"]
    store.announce_worker(worker_info("w1"))  # a worker id may come back
    assert {w.worker_id for w in store.list_workers()} == {"w1", "w2"}


# --- 14. the operator's picture -----------------------------------------------------------------------

def test_queue_counts_backlog_and_last_failures_give_the_operators_picture(store: JobStore) -> None:
    """Queued and running jobs counted by state and model (what /metrics and `dreamreel status` show), deliveries
    still to make, and the last failures newest first."""
    flash = store.create(Generation.new(owner="alice", dialect="luma", seed=9, request=GenerationRequest(
        prompt="flash", model="ray-flash-2", callback_url=HOOK), notify_on=frozenset({State.FAILED})))
    for n in range(3):
        submit(store, n)
    running = store.claim("w", LONG)
    assert running is not None and running.id == flash.id  # the first submitted
    assert sorted(store.queue_counts()) == [("queued", "ray-2", 3), ("running", "ray-flash-2", 1)]
    second = store.claim("w", LONG)
    assert second is not None
    store.fail(second.id, "w", FailureCode.INPUT, "bad keyframe")
    time.sleep(0.01)
    store.fail(running.id, "w", FailureCode.INTERNAL, "boom")
    assert [g.id for g in store.recent_failures(5)] == [running.id, second.id]
    assert [g.failure_reason for g in store.recent_failures(1)] == ["boom"]
    assert sorted(store.queue_counts()) == [("queued", "ray-2", 2)]
    assert store.outbox_backlog() == 1  # the flash job's failure is still to be told
    drain(store)
    assert store.outbox_backlog() == 0
