"""The worker announces itself to the store (``JobStore.announce_worker``): while idle at most every
``heartbeat_seconds``, its job while it runs one, and it forgets itself on a clean stop; a store error while
announcing is logged and never costs the worker or its job. No model is loaded: jobs are stubbed."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

import pytest
from tests.conftest import wait_for

from dreamreel.config import Settings
from dreamreel.core.generation import Generation
from dreamreel.core.jobstore import WorkerInfo
from dreamreel.core.request import GenerationRequest
from dreamreel.engine.catalog import embedded_catalog
from dreamreel.store.sqlite import SQLiteStore
from dreamreel.worker.loop import Worker


def make_worker(tmp_path: Path, store: SQLiteStore, **settings: object) -> Worker:
    config = Settings(data_dir=tmp_path, heartbeat_seconds=0.05, poll_seconds=0.02, device="cuda:3", **settings)
    return Worker(config, store=store, catalog=embedded_catalog(tmp_path / "never-loaded", device="cuda:3"))


def queue_one(store: SQLiteStore) -> str:
    return store.create(Generation.new(owner="local", dialect="luma", request=GenerationRequest(prompt="x"),
                                       seed=0)).id


def test_idle_worker_announces_each_heartbeat_runs_a_job_as_current_and_forgets_itself(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "dreamreel.db")
    worker = make_worker(tmp_path, store)
    seen_during_job: list[WorkerInfo] = []
    worker._process = lambda job: seen_during_job.extend(store.list_workers())  # type: ignore[method-assign]
    loop = threading.Thread(target=worker.run_forever, daemon=True)
    loop.start()
    try:
        (first,) = wait_for(store.list_workers, timeout=10, interval=0.01)
        assert (first.worker_id, first.host, first.pid, first.device) == (
            worker.worker_id, socket.gethostname(), os.getpid(), "cuda:3")
        assert first.models == () and first.current_job is None and first.started_at <= first.last_seen
        wait_for(lambda: store.list_workers()[0].last_seen > first.last_seen, timeout=10, interval=0.01)

        gid = queue_one(store)
        wait_for(lambda: seen_during_job, timeout=10, interval=0.01)
        assert [w.current_job for w in seen_during_job] == [gid]
        wait_for(lambda: store.list_workers()[0].current_job is None, timeout=10, interval=0.01)
    finally:
        worker.stop_event.set()
        loop.join(10)
    assert not loop.is_alive() and store.list_workers() == []


class BrokenAnnounceStore(SQLiteStore):
    def announce_worker(self, info: WorkerInfo) -> None:
        raise OSError("database is on fire")

    def forget_worker(self, worker_id: str) -> None:
        raise OSError("database is on fire")


def test_a_store_error_while_announcing_costs_neither_the_worker_nor_its_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    store = BrokenAnnounceStore(tmp_path / "dreamreel.db")
    worker = make_worker(tmp_path, store)
    ran: list[str] = []
    worker._process = lambda job: ran.append(job.id)  # type: ignore[method-assign]
    gid = queue_one(store)
    turns = iter(range(20))
    worker.exit_when = lambda: next(turns, None) is None
    with caplog.at_level(logging.WARNING, logger="dreamreel.worker"):
        worker.run_forever()  # returns: nothing raised out of announce or forget
    assert ran == [gid]
    assert any("could not announce worker" in r.getMessage() for r in caplog.records)
    assert any("could not forget worker" in r.getMessage() for r in caplog.records)
