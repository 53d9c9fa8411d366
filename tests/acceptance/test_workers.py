"""Seeing the workers: ``GET /admin/workers`` (behind ``DREAMREEL_ADMIN_TOKEN``) and ``dreamreel workers``, on a
real ``dreamreel serve`` with one worker."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
from tests.conftest import DREAMREEL, ServerProcess, wait_for

from dreamreel.config import Settings

TOKEN = "admin-token-for-tests"
LUMA = "/dream-machine/v1/generations"


def admin_get(server: ServerProcess, authorization: str | None = f"Bearer {TOKEN}") -> httpx.Response:
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.get(f"{server.url}/admin/workers", headers=headers, timeout=10)


def cli_workers(server: ServerProcess, *extra: str) -> str:
    result = subprocess.run([DREAMREEL, "workers", "--data-dir", str(server.data_dir), *extra],
                            env=server.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def nice_of(pid: int) -> int:
    """The nice value of ``pid``'s main thread (``/proc/<pid>/stat``, field 19)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_running_worker_is_listed_with_its_job_by_the_api_and_the_cli(tmp_path, tiny_model_dir) -> None:
    server = ServerProcess(tmp_path / "data", tiny_model_dir, extra_env={
        "DREAMREEL_ADMIN_TOKEN": TOKEN, "DREAMREEL_STEPS": "400", "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0",
    }).start()
    try:
        for wrong in (None, "Bearer not-the-token", f"Key {TOKEN}", TOKEN, "Bearer"):
            refused = admin_get(server, wrong)
            assert refused.status_code == 401, wrong
            assert "admin token" in refused.json()["detail"]

        (idle,) = wait_for(lambda: (ws := admin_get(server).json()["workers"]) and ws[0]["models"] and ws, 60)
        assert idle["host"] == socket.gethostname() and idle["device"] == "cpu"
        assert idle["models"] == ["ray-2", "ray-flash-2"] and idle["current_job"] is None and idle["alive"]
        assert idle["worker_id"].startswith(f"{idle['host']}-{idle['pid']}-")
        assert idle["started_at"] <= idle["last_seen"]
        # The API steps below its worker (api_nice, default 5); the worker keeps the priority serve started with.
        assert server.proc is not None
        assert nice_of(server.proc.pid) == nice_of(idle["pid"]) + Settings().api_nice

        gid = httpx.post(f"{server.url}{LUMA}", json={"prompt": "a red ball", "resolution": "540p"}).json()["id"]
        busy = wait_for(lambda: (w := admin_get(server).json()["workers"][0])["current_job"] == gid and w, 60)
        assert busy["worker_id"] == idle["worker_id"] and busy["last_seen"] > idle["last_seen"]

        table = cli_workers(server)
        assert idle["worker_id"] in table and gid in table and "ray-2, ray-flash-2" in table and " s ago" in table

        assert httpx.delete(f"{server.url}{LUMA}/{gid}").status_code in (200, 204)  # cancels the running job
        wait_for(lambda: admin_get(server).json()["workers"][0]["current_job"] is None, 60)
    finally:
        server.stop()


def test_admin_routes_are_absent_without_an_admin_token(tmp_path, tiny_model_dir) -> None:
    server = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0).start()
    try:
        for authorization in (None, f"Bearer {TOKEN}", "Bearer"):
            answer = admin_get(server, authorization)
            assert answer.status_code == 404 and answer.json() == {"detail": "not found"}
    finally:
        server.stop()
