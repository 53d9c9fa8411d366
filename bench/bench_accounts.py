"""What keys and fairness cost per request: resolving an API key, and claiming the next job in fair order.

1. Key resolution (``api/keyring.KeyRing.resolve``) on SQLite: a bootstrap key, an issued key while its
   lookup is cached (``key_cache_seconds``), an issued key looked up in the store every time (cache 0), and,
   for scale, one bcrypt-cost password hash (``hashlib.scrypt`` at n=2**14, r=8: a typical login-grade
   setting) that a per-request slow hash would add.
2. ``claim`` latency with a deep queue, per backend: the same 500 queued jobs held by 1 owner and by 50
   owners (10 each), claims timed while the queue drains; fair order groups the queue by owner on every claim.

Usage: .venv/bin/python bench/bench_accounts.py [--queued 500] [--backends postgres,sqlite]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from harness import database, make_job, percentile

from dreamreel.api.keyring import KeyRing, issue_key
from dreamreel.core.accounts import KeyLimits
from dreamreel.core.generation import Assets, Generation, VideoInfo
from dreamreel.store import open_store
from dreamreel.store.sqlite import SQLiteStore

PEPPER = b"p" * 32
VIDEO = VideoInfo(width=960, height=540, fps=24, frames=120, size_bytes=1)


def time_calls(call, count: int) -> float:
    """Median microseconds per call over ``count`` calls (after 10 warm-up calls)."""
    for _ in range(10):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def bench_keys() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "dreamreel.db")
        _, token = issue_key(store, PEPPER, name="bench", limits=KeyLimits(rpm=60))
        cached = KeyRing(store, PEPPER, ["bootstrap-key"], cache_s=2.0)
        uncached = KeyRing(store, PEPPER, ["bootstrap-key"], cache_s=0.0)
        rows = [
            ("bootstrap key", time_calls(lambda: cached.resolve("Bearer bootstrap-key"), 2000)),
            ("issued key, cached", time_calls(lambda: cached.resolve(f"Bearer {token}"), 2000)),
            ("issued key, store lookup", time_calls(lambda: uncached.resolve(f"Bearer {token}"), 500)),
            ("scrypt n=2^14 (a slow hash, for scale)",
             time_calls(lambda: hashlib.scrypt(b"secret", salt=b"s" * 16, n=2**14, r=8, p=1), 20)),
        ]
    base = rows[1][1]
    print("| resolve | µs per request (median) | ratio to cached |")
    print("|---|---|---|")
    for name, micros in rows:
        print(f"| {name} | {micros:.1f} | {micros / base:.1f}x |")


def jobs_for(owners: int, total: int) -> list[Generation]:
    jobs = []
    for n in range(total):
        job = make_job(n)
        jobs.append(Generation.new(owner=f"owner-{n % owners}", dialect="luma", request=job.request, seed=n))
    return jobs


def bench_claims(backend: str, queued: int) -> None:
    for owners in (1, 50):
        with database(backend) as url:
            store = open_store(url)
            for job in jobs_for(owners, queued):
                store.create(job)
            samples = []
            for _ in range(queued):
                started = time.perf_counter()
                job = store.claim("bench", 3600.0)
                samples.append((time.perf_counter() - started) * 1000)
                assert job is not None
                store.complete(job.id, "bench", Assets(video="v.mp4"), VIDEO)
            store.close()
        print(f"| {backend} | {queued} jobs, {owners} owner(s) | {statistics.median(samples):.2f} | "
              f"{percentile(samples, 95):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queued", type=int, default=500)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    bench_keys()
    print()
    print("| backend | queue | claim ms (median) | p95 |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        bench_claims(backend, args.queued)


if __name__ == "__main__":
    main()
