"""Claim race: worker processes draining one queue at the same time, at the store level.

1000 jobs are queued, then 2 worker processes (by default) start together and each loops ``claim`` ->
``complete`` (no model, nothing rendered) until ``claim`` finds the queue empty. This measures the store's
claim throughput under contention (PostgreSQL: ``FOR UPDATE SKIP LOCKED`` row locks; SQLite: one
``BEGIN IMMEDIATE`` write lock) and checks the property the scale-out rests on: every job was claimed
exactly once (by the workers' own lists, by each row's ``attempts`` and by its claim events) and completed.
Any violation raises.

Usage: .venv/bin/python bench/bench_claim_race.py [--jobs 1000] [--workers 2] [--backends postgres,sqlite]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from harness import database, make_job, spawn_context

from dreamreel.core.generation import Assets, State, VideoInfo
from dreamreel.store import open_store

LEASE_S = 600.0
VIDEO = VideoInfo(width=960, height=540, fps=24, frames=120, size_bytes=1)


def racer(url: str, name: str, ready, go, results) -> None:
    """Claim and complete until the queue is empty; puts (name, claimed ids, finish time) on ``results``."""
    store = open_store(url)
    claimed = []
    try:
        ready.put(name)
        go.wait()
        while (job := store.claim(name, LEASE_S)) is not None:
            if not store.complete(job.id, name, Assets(video=f"generations/{job.id}/video.mp4"), VIDEO):
                raise RuntimeError(f"{name} could not complete {job.id} it had claimed")
            claimed.append(job.id)
        results.put((name, claimed, time.time()))
    finally:
        store.close()


def race(backend: str, jobs: int, workers: int) -> tuple[float, dict[str, int]]:
    """(seconds from the start signal to the last worker finding the queue empty, jobs per worker)."""
    ctx = spawn_context()
    with database(backend) as url:
        store = open_store(url)
        try:
            ids = {store.create(make_job(n)).id for n in range(jobs)}
            ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
            names = [f"racer-{k}" for k in range(workers)]
            procs = [ctx.Process(target=racer, args=(url, name, ready, go, results), daemon=True) for name in names]
            for proc in procs:
                proc.start()
            for _ in procs:
                ready.get(timeout=60)  # every racer has imported and opened its store
            started = time.time()
            go.set()
            finished = [results.get(timeout=600) for _ in procs]
            for proc in procs:
                proc.join(10)
            seconds = max(at for _, _, at in finished) - started
            verify(store, ids, {name: claimed for name, claimed, _ in finished})
        finally:
            store.close()
    return seconds, {name: len(claimed) for name, claimed, _ in sorted(finished)}


def verify(store, ids: set[str], claimed: dict[str, list[str]]) -> None:
    """Every job claimed by exactly one worker, exactly once, and completed; raises otherwise."""
    counts = Counter(job_id for jobs in claimed.values() for job_id in jobs)
    twice = [job_id for job_id, n in counts.items() if n > 1]
    if twice:
        raise AssertionError(f"{len(twice)} jobs claimed more than once, e.g. {twice[:3]}")
    if set(counts) != ids:
        raise AssertionError(f"{len(ids - set(counts))} jobs never claimed, {len(set(counts) - ids)} unknown")
    for job_id in ids:
        generation = store.get(job_id)
        claims = [e for e in store.events(job_id) if "started the request" in e.message]
        if generation.state is not State.COMPLETED or generation.attempts != 1 or len(claims) != 1:
            raise AssertionError(f"{job_id}: state {generation.state}, attempts {generation.attempts}, "
                                 f"{len(claims)} claim events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="racing worker processes")
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    print("| backend | jobs | worker processes | total s | jobs/s | jobs per worker | each claimed exactly once |")
    print("|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        seconds, per_worker = race(backend, args.jobs, args.workers)
        split = " / ".join(str(n) for n in per_worker.values())
        print(f"| {backend} | {args.jobs} | {args.workers} | {seconds:.2f} | {args.jobs / seconds:.0f} | {split}"
              " | yes |", flush=True)


if __name__ == "__main__":
    main()
