"""One tenant's slow webhook receiver must not delay another tenant's callbacks.

A real ``dreamreel serve`` (no workers) delivers the callbacks; the test plays the worker through the store
API (claim, complete), so each transition's time is known exactly and no model has to run. Receiver A takes
5 s per request, receiver B answers at once; A's jobs are older, so a dispatcher that sends in outbox order
alone would make B wait behind every one of A's callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.acceptance.receiver import Receiver
from tests.conftest import ServerProcess, wait_for

from dreamreel.core.generation import Assets, VideoInfo
from dreamreel.store.sqlite import SQLiteStore

WORKER = "test-worker"
SLOW_S = 5.0
ON_TIME_S = 1.0


@pytest.fixture
def no_worker_server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0).start()
    yield proc
    proc.stop()


def _submit(server: ServerProcess, callback_url: str) -> str:
    response = httpx.post(f"{server.url}/dream-machine/v1/generations",
                          json={"prompt": "a lighthouse at dusk", "callback_url": callback_url})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_slow_receiver_does_not_delay_another_destinations_callbacks(no_worker_server: ServerProcess) -> None:
    slow, fast = Receiver(delay_s=SLOW_S), Receiver()
    store = SQLiteStore(no_worker_server.data_dir / "dreamreel.db")
    try:
        slow_ids = [_submit(no_worker_server, slow.url) for _ in range(3)]  # older: first in the outbox
        fast_ids = [_submit(no_worker_server, fast.url) for _ in range(2)]
        claimed = [store.claim(WORKER, lease_s=60) for _ in range(5)]
        assert [job.id for job in claimed if job] == slow_ids + fast_ids  # each writes a "dreaming" callback

        wait_for(lambda: len(fast.bodies) == 2, timeout=10)
        assert slow.calls <= 1  # A is still answering its first callback

        for job_id in fast_ids:
            assert store.complete(job_id, WORKER, Assets(video=f"generations/{job_id}/video.mp4"),
                                  VideoInfo(width=960, height=544, fps=24, frames=121, size_bytes=1000))
        completed_at = time.time()
        wait_for(lambda: [b["state"] for b in fast.bodies].count("completed") == 2, timeout=10)

        lateness = [arrived - completed_at for body, arrived in zip(fast.bodies, fast.arrived_at, strict=True)
                    if body["state"] == "completed"]
        assert max(lateness) < ON_TIME_S, f"B's callbacks arrived {lateness} s after completion"
        # Per generation, dreaming still comes before completed.
        for job_id in fast_ids:
            assert [b["state"] for b in fast.bodies if b["id"] == job_id] == ["dreaming", "completed"]
        assert slow.calls <= 2
    finally:
        store.close()
        slow.close()
        fast.close()
