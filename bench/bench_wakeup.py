"""Wake-up latency: how long a job waits between being submitted and an idle worker claiming it.

PostgreSQL wakes idle workers with LISTEN/NOTIFY (``PostgresStore.wait_for_work``); SQLite with a wake-up pipe
per idle worker beside the database, rung after a commit that queued work (``store/wakeup.py``); polling every
``poll_seconds`` (0.5 s by default, ``config.py``) is the fallback of both. Both run here, one after the
other, in one run. A worker process loops ``claim`` / ``wait_for_work(poll_seconds)`` exactly
as ``worker/loop.py:run_forever`` does (without rendering: the claimed job stays ``running``) and reports
the time each claim returned. The submitter creates one job at a time, waits until it was claimed, then
pauses a random 20-100 ms so the worker is idle again (waiting) when the next job comes. The latency is from
just before ``store.create`` (the insert and its commit included) to the worker's ``claim`` returning it.

Target: median <= 50 ms on PostgreSQL and on SQLite.

Usage: .venv/bin/python bench/bench_wakeup.py [--jobs 200] [--poll-seconds 0.5] [--backends postgres,sqlite]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from harness import database, make_job, percentile, spawn_context

from dreamreel.config import Settings
from dreamreel.store import open_store

LEASE_S = 3600.0  # nothing is re-queued during the run
WARMUP = 3  # jobs not counted: the first wait opens the LISTEN connection


def idle_worker(url: str, poll_s: float, stop, claims) -> None:
    """``run_forever``'s idle loop; puts (job id, time.time() when claim returned) on ``claims``."""
    store = open_store(url)
    worker_id = f"bench-{os.getpid()}"
    try:
        while not stop.is_set():
            job = store.claim(worker_id, LEASE_S)
            if job is None:
                store.wait_for_work(poll_s)
            else:
                claims.put((job.id, time.time()))
    finally:
        store.close()


def measure(backend: str, jobs: int, poll_s: float, rng: random.Random) -> list[float]:
    """Seconds from submit to claim, one per job."""
    ctx = spawn_context()
    with database(backend) as url:
        store = open_store(url)  # creates the schema before the worker opens it
        stop, claims = ctx.Event(), ctx.Queue()
        worker = ctx.Process(target=idle_worker, args=(url, poll_s, stop, claims), daemon=True)
        worker.start()
        latencies = []
        try:
            for n in range(WARMUP + jobs):
                job = make_job(n)
                submitted = time.time()
                store.create(job)
                claimed_id, claimed_at = claims.get(timeout=30)
                if claimed_id != job.id:
                    raise RuntimeError(f"claimed {claimed_id}, expected {job.id}")
                if n >= WARMUP:
                    latencies.append(claimed_at - submitted)
                time.sleep(rng.uniform(0.020, 0.100))
        finally:
            stop.set()
            worker.join(10)
            store.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs measured per backend (>= 100 for a p99)")
    parser.add_argument("--poll-seconds", type=float, default=Settings.model_fields["poll_seconds"].default,
                        help="the idle worker's wait_for_work timeout (default: the service's poll_seconds)")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--seed", type=int, default=0, help="seeds the 20-100 ms pauses between jobs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for backend in args.backends.split(","):
        ms = [1000 * s for s in measure(backend, args.jobs, args.poll_seconds, rng)]
        wake = "LISTEN/NOTIFY" if backend == "postgres" else "wake-up pipe (store/wakeup.py)"
        rows.append((backend, wake, len(ms), statistics.median(ms), percentile(ms, 99), min(ms), max(ms)))
    print(f"wait_for_work timeout (poll_seconds): {args.poll_seconds} s\n")
    print("| backend | idle worker wakes by | jobs | median ms | p99 ms | min ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for backend, wake, n, med, p99, lo, hi in rows:
        print(f"| {backend} | {wake} | {n} | {med:.1f} | {p99:.1f} | {lo:.1f} | {hi:.1f} |")


if __name__ == "__main__":
    main()
