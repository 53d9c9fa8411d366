"""Durability: kill -9 a worker mid-generation, or the API with jobs queued; nothing is lost."""

from __future__ import annotations

import signal
import sqlite3

import httpx
from tests.conftest import ServerProcess, start_worker, wait_for

BODY = {"prompt": "a green triangle moves left", "resolution": "540p", "aspect_ratio": "16:9", "model": "ray-flash-2"}
"""``ray-flash-2``: its fast preset encodes with x264 ultrafast, and what is checked here is that each job completes
once, not its pixels."""


def _get(server: ServerProcess, gid: str) -> dict:
    return httpx.get(f"{server.url}/dream-machine/v1/generations/{gid}", timeout=10).json()


def test_worker_killed_mid_generation_job_completes_once(tmp_path, tiny_model_dir) -> None:
    # The API alone; workers are separate processes we can kill.
    server = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0).start()
    try:
        gid = httpx.post(f"{server.url}/dream-machine/v1/generations", json=BODY).json()["id"]
        # A deliberately slow job: many steps, so the kill lands mid-denoising.
        env = {**server.env, "DREAMREEL_PROGRESS_INTERVAL_SECONDS": "0", "DREAMREEL_STEPS": "400"}
        first = start_worker(server.data_dir, tiny_model_dir, env)
        wait_for(lambda: _get(server, gid)["state"] == "dreaming", timeout=60)
        db = sqlite3.connect(server.data_dir / "dreamreel.db")
        wait_for(lambda: db.execute("SELECT progress_step FROM generations").fetchone()[0] >= 2, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert _get(server, gid)["state"] == "dreaming"  # still claimed by the dead worker until the lease lapses

        second = start_worker(server.data_dir, tiny_model_dir, {**server.env, "DREAMREEL_STEPS": "4"})
        try:
            final = wait_for(lambda: (g := _get(server, gid))["state"] in ("completed", "failed") and g, 120)
        finally:
            second.terminate()
            second.wait(30)
        assert final["state"] == "completed", final
        assert httpx.get(final["assets"]["video"]).status_code == 200
        rows = db.execute("SELECT id, attempts FROM generations").fetchall()
        assert rows == [(gid, 2)]  # one generation, run twice, delivered once
        events = [m for (m,) in db.execute("SELECT message FROM events WHERE generation_id = ?", (gid,))]
        assert any("lease lapsed" in m for m in events)
    finally:
        server.stop()


def test_api_killed_with_jobs_queued_all_complete_after_restart(tmp_path, tiny_model_dir) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, tiny_model_dir, workers=0).start()
    ids = [
        httpx.post(f"{server.url}/dream-machine/v1/generations", json={**BODY, "prompt": f"clip {i}"}).json()["id"]
        for i in range(3)
    ]
    server.kill()

    restarted = ServerProcess(data, tiny_model_dir, workers=1).start()
    try:
        listed = httpx.get(f"{restarted.url}/dream-machine/v1/generations").json()["generations"]
        assert sorted(g["id"] for g in listed) == sorted(ids)
        for gid in ids:
            final = wait_for(lambda gid=gid: (g := _get(restarted, gid))["state"] in ("completed", "failed") and g)
            assert final["state"] == "completed", final
    finally:
        restarted.stop()
