"""Scale-out on PostgreSQL, longer than the chaos test: API processes and worker processes sharing one
database schema and one files directory, N generations through all three dialects.

The setup is ``tests/acceptance/test_scale_out_chaos.py``'s, larger: 3 ``dreamreel serve --workers 0`` API
processes and 4 ``dreamreel worker`` processes (lease 3 s, heartbeat 0.5 s, poll 0.2 s, as the tests run
them) on the tiny random LTX model at 16:9 540p 5 s with a few denoising steps. All N generations are
submitted at once, round-robin over the Luma, fal and AI/ML routes and over the API nodes (each dialect goes
through each node). With ``--chaos K`` a worker holding a job is killed -9 every K seconds and a new one
started. Reported from the store rows (``created_at``, ``started_at`` = first claim, ``finished_at``): wall
time, generations per minute, queue wait and end-to-end p50/p95, and the attempts histogram. Checked (raises
otherwise): every generation completed, exactly one MP4 each (120 frames), one claim event per attempt, and
every re-claim preceded by the lapse of the previous holder's lease.

Usage: .venv/bin/python bench/bench_scale_out.py [--generations 300] [--chaos 20] [--steps 4]
       [--model-dir models/tiny-ltx]   (without it: models/tiny-ltx if built, else one built in a temp dir)
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
from harness import ROOT, database, percentile
from tests.conftest import DREAMREEL, ServerProcess, start_worker, stop_all

from dreamreel.media.probe import probe_mp4

DIALECTS = ("luma", "fal", "aiml")


def submit(client: httpx.Client, api: ServerProcess, dialect: str, n: int) -> str:
    """One 16:9 540p 5 s generation through ``dialect``'s route on ``api``; returns its id."""
    prompt = f"a red ball rolls on grass, clip {n}"
    if dialect == "luma":
        body = {"prompt": prompt, "resolution": "540p"}
        return client.post(f"{api.url}/dream-machine/v1/generations", json=body).raise_for_status().json()["id"]
    if dialect == "fal":
        body = {"prompt": prompt, "resolution": "540p"}
        response = client.post(f"{api.url}/fal-ai/luma-dream-machine/ray-2", json=body)
        return response.raise_for_status().json()["request_id"]
    body = {"model": "luma/ray-2", "prompt": prompt, "resolution": "540p"}
    response = client.post(f"{api.url}/v2/video/generations", json=body)
    return response.raise_for_status().json()["id"].split(":")[0]


def kill_a_busy_worker(db: psycopg.Connection, workers: list[subprocess.Popen]) -> str | None:
    """kill -9 one of our workers that holds a job past its first step; returns the job id, or None."""
    rows = db.execute("SELECT id, worker_id FROM generations WHERE state = 'running' AND progress_step > 0")
    for job_id, worker_id in rows.fetchall():
        pid = int(worker_id.split("-")[-2])  # worker ids are <host>-<pid>-<suffix>
        victim = next((w for w in workers if w.pid == pid and w.poll() is None), None)
        if victim is not None:
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            return job_id
    return None


def wait_until_polling(worker_dir: Path, timeout: float = 180) -> None:
    """Until the worker in ``worker_dir`` has loaded its model and logged that it polls for work."""
    deadline = time.monotonic() + timeout
    while not any("polling" in log.read_text() for log in worker_dir.glob("worker-*.log")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker in {worker_dir} ready after {timeout} s")
        time.sleep(0.5)


def verify(db: psycopg.Connection, files: Path, ids: set[str]) -> list[tuple]:
    """Every generation completed once with one MP4; returns the rows (id, created, started, finished, attempts)."""
    rows = db.execute("SELECT id, state, created_at, started_at, finished_at, attempts, failure_reason"
                      " FROM generations").fetchall()
    if {row[0] for row in rows} != ids or len(rows) != len(ids):
        raise AssertionError(f"{len(rows)} rows for {len(ids)} submitted generations")
    not_done = [(row[0], row[1], row[6]) for row in rows if row[1] != "completed"]
    if not_done:
        raise AssertionError(f"{len(not_done)} generations not completed, e.g. {not_done[:3]}")
    events: dict[str, list[str]] = {job_id: [] for job_id in ids}
    for job_id, message in db.execute("SELECT generation_id, message FROM events ORDER BY id"):
        events[job_id].append(message)
    for job_id, _, _, _, _, attempts, _ in rows:
        mp4s = list((files / "generations" / job_id).glob("*.mp4"))
        if [p.name for p in mp4s] != ["video.mp4"] or probe_mp4(mp4s[0]).frames != 120:
            raise AssertionError(f"{job_id}: MP4s {[p.name for p in mp4s]}")
        claims = [i for i, m in enumerate(events[job_id]) if "started the request" in m]
        if len(claims) != attempts:
            raise AssertionError(f"{job_id}: {len(claims)} claim events for {attempts} attempts")
        for earlier, later in zip(claims, claims[1:], strict=False):
            if not any("lease lapsed" in m or "shut down" in m for m in events[job_id][earlier:later]):
                raise AssertionError(f"{job_id} claimed again while its holder kept the lease: {events[job_id]}")
    return [(row[0], row[2], row[3], row[4], row[5]) for row in rows]


def run(args: argparse.Namespace, model_dir: Path, tmp: Path) -> None:
    with database("postgres") as url, psycopg.connect(url, autocommit=True) as db:
        files = tmp / "shared-files"
        env = {
            "DREAMREEL_DATABASE_URL": url,
            "DREAMREEL_STORAGE_DIR": str(files),
            "DREAMREEL_STEPS": str(args.steps),
            "DREAMREEL_PROGRESS_INTERVAL_SECONDS": "0",
            "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0",
        }
        apis = [ServerProcess(tmp / f"api{i}", model_dir, workers=0, extra_env=env).start() for i in range(args.apis)]
        workers: list[subprocess.Popen] = []
        try:
            for i in range(args.workers):
                (tmp / f"worker{i}").mkdir()
                workers.append(start_worker(tmp / f"worker{i}", model_dir, apis[0].env))
            for i in range(args.workers):  # measure the cluster warm: models loaded before the first submit
                wait_until_polling(tmp / f"worker{i}")
            with httpx.Client(timeout=30) as client:
                ids = {submit(client, apis[(n // len(DIALECTS)) % len(apis)], DIALECTS[n % len(DIALECTS)], n)
                       for n in range(args.generations)}
            submitted = time.monotonic()
            kills: list[str] = []
            next_kill = submitted + args.chaos
            while True:
                left = db.execute("SELECT count(*) FROM generations WHERE state NOT IN ('completed', 'failed',"
                                  " 'cancelled')").fetchone()[0]
                if left == 0:
                    break
                if time.monotonic() - submitted > args.timeout:
                    raise TimeoutError(f"{left} generations unfinished after {args.timeout} s")
                if args.chaos and time.monotonic() >= next_kill:
                    victim_job = kill_a_busy_worker(db, workers)
                    if victim_job is not None:
                        kills.append(victim_job)
                        workers.append(start_worker(tmp / "worker0", model_dir, apis[0].env))
                        next_kill = time.monotonic() + args.chaos
                time.sleep(0.2)
            rows = verify(db, files, ids)
        finally:
            stop_all(workers, apis)
    report(args, rows, kills)


def report(args: argparse.Namespace, rows: list[tuple], kills: list[str]) -> None:
    wall = max(r[3] for r in rows) - min(r[1] for r in rows)
    waits = [r[2] - r[1] for r in rows]
    e2e = [r[3] - r[1] for r in rows]
    attempts = Counter(r[4] for r in rows)
    killed_attempts = [next(r[4] for r in rows if r[0] == job) for job in kills]
    chaos = f"kill -9 every {args.chaos:g} s: {len(kills)} kills" if args.chaos else "none"
    print(f"{args.apis} API processes, {args.workers} workers, PostgreSQL, {args.steps} steps, 16:9 540p 5 s, "
          f"chaos: {chaos}\n")
    print("| generations | wall s | generations/min | queue wait p50 / p95 s | end-to-end p50 / p95 s "
          "| attempts: count | completed once, one MP4 each |")
    print("|---|---|---|---|---|---|---|")
    hist = ", ".join(f"{k}: {v}" for k, v in sorted(attempts.items()))
    print(f"| {len(rows)} | {wall:.0f} | {60 * len(rows) / wall:.1f} | {statistics.median(waits):.1f} / "
          f"{percentile(waits, 95):.1f} | {statistics.median(e2e):.1f} / {percentile(e2e, 95):.1f} | {hist} | yes |")
    if kills:
        print(f"\nattempts of the jobs whose worker was killed: {killed_attempts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--apis", type=int, default=3, help="dreamreel serve --workers 0 processes")
    parser.add_argument("--workers", type=int, default=4, help="dreamreel worker processes")
    parser.add_argument("--steps", type=int, default=4, help="DREAMREEL_STEPS for the workers")
    parser.add_argument("--chaos", type=float, default=0, help="kill -9 a busy worker every this many s (0: off)")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dreamreel-scale-") as tmp:
        model_dir = args.model_dir or ROOT / "models" / "tiny-ltx"
        if not model_dir.exists():
            model_dir = Path(tmp) / "tiny-ltx"
            subprocess.run([DREAMREEL, "build-tiny-model", str(model_dir)], check=True, capture_output=True)
        run(args, model_dir, Path(tmp))


if __name__ == "__main__":
    main()
