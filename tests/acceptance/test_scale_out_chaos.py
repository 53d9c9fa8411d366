"""Scale-out on PostgreSQL under chaos: 2 API processes and 3 workers share one database and one files
directory; workers holding a job are killed -9 and restarted, and so is one API process. Every generation,
submitted round-robin through all three dialects, completes exactly once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psycopg
from tests.acceptance.receiver import Receiver
from tests.conftest import ServerProcess, start_worker, stop_all
from tests.postgres import fresh_schema

from dreamreel.media.probe import probe_mp4

GENERATIONS = 6
WORKER_KILLS = 3


def _submit(api: ServerProcess, dialect: str, n: int, callback: str) -> str:
    """One clip of ``ray-flash-2`` (its fast preset: what is checked is that each completes once, not pixels)."""
    prompt = f"a red ball rolls on grass, clip {n}"
    if dialect == "luma":
        body = {"prompt": prompt, "model": "ray-flash-2", "resolution": "540p", "callback_url": callback}
        return httpx.post(f"{api.url}/dream-machine/v1/generations", json=body, timeout=10).json()["id"]
    if dialect == "fal":
        body = {"prompt": prompt, "resolution": "540p"}
        return httpx.post(f"{api.url}/fal-ai/luma-dream-machine/ray-flash-2", json=body,
                          timeout=10).json()["request_id"]
    body = {"model": "luma/ray-flash-2", "prompt": prompt, "resolution": "540p"}
    return httpx.post(f"{api.url}/v2/video/generations", json=body, timeout=10).json()["id"].split(":")[0]


def _running(db: psycopg.Connection) -> dict[str, str]:
    """Running job id -> the worker id holding it (``<host>-<pid>-<suffix>``)."""
    rows = db.execute("SELECT id, worker_id FROM generations WHERE state = 'running' AND progress_step > 0")
    return {job_id: worker_id for job_id, worker_id in rows.fetchall() if worker_id}


def _states(db: psycopg.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT id, state FROM generations").fetchall())


def test_every_generation_completes_once_while_workers_and_an_api_node_are_killed(
    tmp_path: Path, tiny_model_dir: Path,
) -> None:
    receiver = Receiver()
    with fresh_schema() as url, psycopg.connect(url, autocommit=True) as db:
        env = {
            "DREAMREEL_DATABASE_URL": url,
            "DREAMREEL_STORAGE_DIR": str(tmp_path / "shared-files"),
            "DREAMREEL_STEPS": "20",
            "DREAMREEL_PROGRESS_INTERVAL_SECONDS": "0",
            "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0",
            "DREAMREEL_WEBHOOK_TIMEOUT_SECONDS": "2",
        }
        apis = [ServerProcess(tmp_path / f"api{i}", tiny_model_dir, workers=0, extra_env=env).start() for i in range(2)]
        workers: list[subprocess.Popen] = []
        try:
            for i in range(3):
                (tmp_path / f"worker{i}").mkdir()
                workers.append(start_worker(tmp_path / f"worker{i}", tiny_model_dir, apis[0].env))
            dialects = ("luma", "fal", "aiml")
            ids = {_submit(apis[n % 2], dialects[n % 3], n, receiver.url): dialects[n % 3] for n in range(GENERATIONS)}
            assert len(ids) == GENERATIONS

            kills: list[tuple[str, str]] = []  # (job, worker) pairs killed while running the job
            api_killed = False
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                states = _states(db)
                if all(state in ("completed", "failed") for state in states.values()):
                    break
                if len(kills) < WORKER_KILLS:
                    for job_id, worker_id in _running(db).items():
                        pid = int(worker_id.split("-")[-2])
                        victim = next((w for w in workers if w.pid == pid and w.poll() is None), None)
                        if victim is not None:
                            victim.send_signal(signal.SIGKILL)
                            victim.wait(10)
                            kills.append((job_id, worker_id))
                            workers.append(start_worker(tmp_path / "worker0", tiny_model_dir, apis[0].env))
                            break
                if kills and not api_killed:
                    apis[1].kill()
                    apis[1].start()  # same port, same files: a restarted node
                    api_killed = True
                time.sleep(0.2)

            states = _states(db)
            assert states == {job_id: "completed" for job_id in ids}, states
            assert len(kills) >= WORKER_KILLS, kills
            assert api_killed

            # One MP4 each, readable through either API node.
            for job_id in ids:
                video = tmp_path / "shared-files" / "generations" / job_id / "video.mp4"
                assert probe_mp4(video).frames == 120
                for api in apis:
                    body = httpx.get(f"{api.url}/dream-machine/v1/generations/{job_id}", timeout=10).json()
                    assert httpx.get(body["assets"]["video"], timeout=10).status_code == 200

            # The claim log: a job is claimed again only after its previous holder's lease lapsed.
            log = defaultdict(list)
            for job_id, message in db.execute("SELECT generation_id, message FROM events ORDER BY id").fetchall():
                log[job_id].append(message)
            for job_id, killed_worker in kills:  # claimed by the killed worker, finished by another
                claims = [m for m in log[job_id] if "started the request" in m]
                assert any(killed_worker in m for m in claims) and killed_worker not in claims[-1], log[job_id]
            for messages in log.values():
                claims = [i for i, m in enumerate(messages) if "started the request" in m]
                for earlier, later in zip(claims, claims[1:], strict=False):
                    between = messages[earlier:later]
                    assert any("lease lapsed" in m or "shut down" in m for m in between), messages

            # Callbacks (the Luma generations): at least one `completed` each; a repeat is the same delivery.
            luma_ids = {job_id for job_id, dialect in ids.items() if dialect == "luma"}
            deadline = time.monotonic() + 60
            completed: dict[str, set[str]] = defaultdict(set)
            while time.monotonic() < deadline and set(completed) != luma_ids:
                completed.clear()
                for body, headers in list(receiver.deliveries):
                    payload = json.loads(body)
                    if payload["state"] == "completed":
                        completed[payload["id"]].add(headers["x-dreamreel-delivery-id"])
                time.sleep(0.2)
            assert set(completed) == luma_ids, completed
            assert all(len(delivery_ids) == 1 for delivery_ids in completed.values()), completed
        finally:
            stop_all(workers, apis)
            receiver.close()
