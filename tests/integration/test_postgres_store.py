"""What only the PostgreSQL store has: migrations under an advisory lock, LISTEN/NOTIFY wake-up, the CLI.

The verbs' behaviour is the contract suite's (``tests/contract/``, run against this backend too).
"""

from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from tests.postgres import fresh_schema

from dreamreel.core.generation import Generation
from dreamreel.core.request import GenerationRequest
from dreamreel.store.postgres import MIGRATIONS, PostgresStore, migrate

DREAMREEL = str(Path(sys.executable).parent / "dreamreel")


def _migrate_in_child(url: str, go, out) -> None:
    go.wait(10)
    out.put(migrate(url))


def test_processes_starting_at_once_apply_each_migration_exactly_once() -> None:
    with fresh_schema() as url:
        ctx = multiprocessing.get_context("fork")
        go, out = ctx.Event(), ctx.Queue()
        children = [ctx.Process(target=_migrate_in_child, args=(url, go, out)) for _ in range(4)]
        for child in children:
            child.start()
        go.set()
        applied = [out.get(timeout=30) for _ in children]
        for child in children:
            child.join(10)
        versions = [version for version, _ in MIGRATIONS]
        assert sorted(v for run in applied for v in run) == versions  # one process applied each, once
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [row[0] for row in rows] == versions
        assert migrate(url) == []


def test_an_idle_worker_wakes_when_a_job_is_queued_not_at_its_next_poll() -> None:
    with fresh_schema() as url:
        worker_view, api_view = PostgresStore(url, pool_size=2), PostgresStore(url, pool_size=2)
        try:
            worker_view.wait_for_work(0.01)  # start listening, as a worker's first idle wait does
            latencies = []
            for n in range(10):
                woke = threading.Event()
                waiter = threading.Thread(target=lambda woke=woke: (worker_view.wait_for_work(5.0), woke.set()))
                waiter.start()
                time.sleep(0.05)
                submitted = time.perf_counter()
                api_view.create(Generation.new(owner="o", dialect="luma", request=GenerationRequest(prompt=f"p{n}"),
                                               seed=n))
                assert woke.wait(2.0), "the worker slept through the notification"
                latencies.append(time.perf_counter() - submitted)
                waiter.join()
                assert worker_view.claim("w", 30) is not None
            assert statistics.median(latencies) < 0.25, latencies  # polling would take up to the 5 s timeout
        finally:
            worker_view.close()
            api_view.close()


def test_wait_without_a_notification_returns_after_its_timeout() -> None:
    with fresh_schema() as url:
        store = PostgresStore(url, pool_size=1)
        try:
            started = time.perf_counter()
            store.wait_for_work(0.3)
            assert 0.25 < time.perf_counter() - started < 2.0
        finally:
            store.close()


def test_db_upgrade_command_migrates_then_reports_up_to_date() -> None:
    with fresh_schema() as url:
        first = subprocess.run([DREAMREEL, "db", "upgrade", "--database-url", url],
                               capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert f"applied migrations {[v for v, _ in MIGRATIONS]}" in first.stdout
        again = subprocess.run([DREAMREEL, "db", "upgrade", "--database-url", url],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "schema up to date" in again.stdout
