"""Status polls and lists never wait behind writes: they read in a pool of their own (``api/reads.py``).

Forty-eight creates wait for SQLite's write lock, held here as a long write transaction (a migration, a
``db copy``, a worker's commit on a slow disk) would hold it; they fill the pool that sync routes run in.
Meanwhile every dialect's status poll and the Luma list still answer at once, over real HTTP; once the lock
is let go, every create completes.
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.conftest import ServerProcess

CREATES = 48
"""More than the 40 threads of anyio's default pool, where FastAPI runs sync routes."""
POLL_BUDGET_S = 1.0
"""A poll that queued behind the creates would wait for the lock (the test holds it until the polls end)."""


def test_polls_and_lists_answer_while_creates_wait_for_the_write_lock(tmp_path: Path, tiny_model_dir: Path) -> None:
    server = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0).start()
    pool = ThreadPoolExecutor(CREATES)
    try:
        luma = f"{server.url}/dream-machine/v1"
        created = httpx.post(f"{luma}/generations", json={"prompt": "a red ball", "resolution": "540p"}, timeout=10)
        assert created.status_code == 201, created.text
        generation_id = created.json()["id"]

        lock = sqlite3.connect(server.data_dir / "dreamreel.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, held until ROLLBACK below
        try:
            creates = [pool.submit(httpx.post, f"{luma}/generations", timeout=60,
                                   json={"prompt": f"a blue cube {i}", "resolution": "540p"}) for i in range(CREATES)]
            time.sleep(1.0)  # every create is in, waiting for the lock (or for a thread of the default pool)
            assert not any(create.done() for create in creates)

            polls = [
                f"{luma}/generations/{generation_id}",
                f"{luma}/generations?limit=10",
                f"{server.url}/fal-ai/luma-dream-machine/requests/{generation_id}/status",
                f"{server.url}/v1/videos/{generation_id}",
                f"{server.url}/v2/video/generations?generation_id={generation_id}",
            ]
            with httpx.Client(timeout=5) as client:
                for url in polls * 2:
                    started = time.perf_counter()
                    response = client.get(url)
                    elapsed = time.perf_counter() - started
                    assert response.status_code in (200, 202), (url, response.text)
                    assert elapsed < POLL_BUDGET_S, (url, elapsed)
                    assert generation_id in response.text or url.endswith("limit=10")
            assert not any(create.done() for create in creates)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        statuses = [create.result(timeout=60).status_code for create in creates]
        assert statuses == [201] * CREATES
        listed = httpx.get(f"{luma}/generations?limit=100", timeout=10).json()
        assert listed["count"] == CREATES + 1
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        server.stop()
