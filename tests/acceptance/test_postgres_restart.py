"""A PostgreSQL restart during a run: while the database is down every dialect answers a clear 503 with
``Retry-After`` in its own error shape, fast; afterwards the API and the worker reconnect by themselves and
no accepted generation is lost. Runs on a private cluster the test starts (never the shared :5432)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.conftest import ServerProcess, wait_for
from tests.postgres import PrivateCluster

from dreamreel.media.probe import probe_mp4

LUMA = "/dream-machine/v1/generations"
BODY = {"prompt": "a blue cube slides right", "resolution": "540p"}


def _state(server: ServerProcess, gid: str) -> str | None:
    response = httpx.get(f"{server.url}{LUMA}/{gid}", timeout=15)
    return response.json()["state"] if response.status_code == 200 else None


def test_database_restart_answers_503_then_recovers_without_losing_a_job(tmp_path: Path, tiny_model_dir: Path) -> None:
    cluster = PrivateCluster().init()
    cluster.start()
    env = {"DREAMREEL_DATABASE_URL": cluster.url, "DREAMREEL_STORAGE_DIR": str(tmp_path / "files"),
           "DREAMREEL_STEPS": "12", "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0"}
    server = ServerProcess(tmp_path / "api", tiny_model_dir, workers=1, extra_env=env).start()
    try:
        first = httpx.post(f"{server.url}{LUMA}", json=BODY, timeout=15).json()["id"]
        wait_for(lambda: _state(server, first) == "dreaming", timeout=60, interval=0.05)
        cluster.stop()

        calls = {
            "luma": lambda: httpx.get(f"{server.url}{LUMA}/{first}", timeout=30),
            "luma create": lambda: httpx.post(f"{server.url}{LUMA}", json=BODY, timeout=30),
            "fal": lambda: httpx.get(f"{server.url}/fal-ai/luma-dream-machine/requests/{first}/status", timeout=30),
            "aiml": lambda: httpx.get(f"{server.url}/v2/video/generations", params={"generation_id": first},
                                      timeout=30),
        }
        with ThreadPoolExecutor(len(calls)) as pool:  # at once, as clients would
            down = dict(zip(calls, pool.map(lambda call: call(), calls.values()), strict=True))
        for name, response in down.items():
            assert response.status_code == 503, (name, response.status_code, response.text)
            assert int(response.headers["retry-after"]) > 0, name
            assert response.elapsed.total_seconds() < 10, name  # fails fast, never hangs
        assert down["luma"].json()["detail"]
        assert down["fal"].json()["error_type"] == "service_unavailable"
        assert down["aiml"].json()["statusCode"] == 503

        cluster.start()
        assert wait_for(lambda: _state(server, first) == "completed", timeout=120)
        second = httpx.post(f"{server.url}{LUMA}", json=BODY, timeout=15).json()["id"]
        assert wait_for(lambda: _state(server, second) == "completed", timeout=120)
        listed = httpx.get(f"{server.url}{LUMA}", timeout=15).json()["generations"]
        assert {g["id"] for g in listed} == {first, second}  # the one refused while down was never accepted
        for gid in (first, second):
            assert probe_mp4(tmp_path / "files" / "generations" / gid / "video.mp4").frames == 120
    finally:
        server.stop()
        cluster.remove()
