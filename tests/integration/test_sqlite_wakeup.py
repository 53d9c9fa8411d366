"""An idle worker on SQLite wakes when a job is queued (``store/wakeup.py``), not at its next poll: from another
thread and from another process, after the commit (so the claim finds the job), and pipes of workers that are
gone are cleared by the next ring."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

from dreamreel.core.generation import Generation
from dreamreel.core.request import GenerationRequest
from dreamreel.store.sqlite import SQLiteStore

POLL_S = 20.0
"""Far longer than any wake-up: a wait that ends early was woken."""


def job(n: int) -> Generation:
    return Generation.new(owner="o", dialect="luma", request=GenerationRequest(prompt=f"clip {n}"), seed=n)


def wait_then_claim(path: str, started, woken) -> None:
    store = SQLiteStore(path)
    store.wait_for_work(0.01)  # its pipe exists from the first wait on
    started.set()
    began = time.monotonic()
    store.wait_for_work(POLL_S)
    claimed = store.claim("w", 60.0)
    woken.put((time.monotonic() - began, claimed.id if claimed else None))
    store.close()


def test_a_queued_job_wakes_an_idle_worker_in_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.db")
    store = SQLiteStore(path)
    context = multiprocessing.get_context("spawn")
    started, woken = context.Event(), context.Queue()
    worker = context.Process(target=wait_then_claim, args=(path, started, woken))
    worker.start()
    assert started.wait(30)
    time.sleep(0.2)  # the worker is blocked in its wait now
    created = store.create(job(1))
    waited, claimed = woken.get(timeout=30)
    worker.join(10)
    assert claimed == created.id  # woken after the commit: the claim sees the job
    assert waited < 2.0, waited


def test_a_wait_returns_at_once_for_work_queued_while_busy_and_stale_pipes_go(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    store.wait_for_work(0.01)
    stale = store._wakeup.directory / "999999-gone"
    os.mkfifo(stale)  # a crashed worker's pipe: nobody reads it
    store.create(job(1))  # rung while nobody waits: the byte waits in the pipe
    assert not stale.exists()
    began = time.monotonic()
    store.wait_for_work(POLL_S)
    assert time.monotonic() - began < 1.0
    # Drained: the next wait blocks until the next ring, from another thread here.
    timer = threading.Timer(0.3, lambda: SQLiteStore(tmp_path / "jobs.db").create(job(2)))
    timer.start()
    began = time.monotonic()
    store.wait_for_work(POLL_S)
    assert 0.2 < time.monotonic() - began < 5.0
    timer.join()
    store.close()
    assert list(store._wakeup.directory.iterdir()) == []
