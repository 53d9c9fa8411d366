"""Two workers on one machine: the throughput of a queue of clips with one worker process against two, each
with its share of the cores (``DREAMREEL_TORCH_THREADS``; ``serve --workers N`` gives each of N workers the
cores / N by default).

Each setup is ``dreamreel worker`` processes (the shipped defaults) on one SQLite store and files directory, the
embedded model. Once every worker has loaded the model, one warm-up clip per worker is queued and waited for;
then ``--clips`` 16:9 540p 5 s text-to-video clips (seeds 1..N, the same in every setup) are queued at once and
the time from the first queued to the last completed is read from the store's rows. Throughput is clips per
minute; the ratio is against one worker with every core (the shipped single worker). The setups run one after
another (a setup is a queue drained, so interleaving is per setup at most: ``--runs`` alternates whole setups).

Target (issue 30): two workers ≥ 1.5 × one worker's throughput, 20 queued 540p clips, this 2-core machine.

A ``1x1`` setup (one worker, one thread, alone) gives the bound: N one-thread workers on N cores make at most N
times its rate, whatever they share.

Usage: .venv/bin/python bench/bench_two_workers.py [--clips 20] [--runs 1] [--setups 1x2,2x1,1x1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_worker, stop_all  # noqa: E402  (the real-worker launcher)

from dreamreel.config import DEFAULT_MODEL_DIR  # noqa: E402
from dreamreel.core.generation import Generation, State  # noqa: E402
from dreamreel.core.request import GenerationRequest  # noqa: E402
from dreamreel.store import open_store  # noqa: E402

LOAD_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 1200.0


def clip(n: int) -> Generation:
    """Clip ``n`` of the queue: 16:9 540p 5 s on the default model, seed ``n``."""
    request = GenerationRequest(prompt=f"a red ball bouncing on green grass, take {n}", resolution="540p",
                                duration_s=5)
    return Generation.new(owner="bench", dialect="luma", request=request, seed=n)


def drain(store, ids: list[str], workers: list[subprocess.Popen]) -> list[Generation]:
    """Wait (checking twice a second: the store is shared with the workers) until every job in ``ids`` ended."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        rows = [store.get(i) for i in ids]
        if all(row.state in (State.COMPLETED, State.FAILED, State.CANCELLED) for row in rows):
            failed = [row for row in rows if row.state is not State.COMPLETED]
            if failed:
                raise RuntimeError(f"{len(failed)} clips did not complete: {failed[0].failure_reason}")
            return rows
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise RuntimeError("the queue did not drain (a worker exited or the time ran out)")
        time.sleep(0.5)


def run_setup(workers: int, threads: int, clips: int, model_dir: Path) -> dict[str, float]:
    """One setup, cold to drained; returns the makespan and per-clip times of the measured queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMREEL_")}
    env["DREAMREEL_TORCH_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="dreamreel-two-workers-") as tmp:
        data = Path(tmp)
        store = open_store(f"sqlite:///{data / 'dreamreel.db'}")
        procs = [start_worker(data, model_dir, env) for _ in range(workers)]
        try:
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while sum(1 for w in store.list_workers() if w.models) < workers:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"workers did not load the model; logs in {data}")
                time.sleep(0.5)
            drain(store, [store.create(clip(1000 + n)).id for n in range(workers)], procs)  # warm-up
            ids = [store.create(clip(n)).id for n in range(1, clips + 1)]
            rows = drain(store, ids, procs)
        finally:
            stop_all(procs, [])
            store.close()
    makespan = max(r.finished_at for r in rows) - min(r.created_at for r in rows)
    return {"makespan": makespan, "per_clip": statistics.median(r.finished_at - r.started_at for r in rows),
            "workers_used": len({r.worker_id for r in rows})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="runs of each setup, whole setups alternating")
    parser.add_argument("--setups", default="1x2,2x1,1x1", help="WORKERSxTHREADS, comma-separated; the first is "
                                                                 "the baseline")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    setups = [tuple(int(v) for v in s.split("x")) for s in args.setups.split(",")]
    results: dict[tuple[int, ...], list[dict[str, float]]] = {s: [] for s in setups}
    for run in range(args.runs):
        for workers, threads in setups if run % 2 == 0 else setups[::-1]:
            results[(workers, threads)].append(run_setup(workers, threads, args.clips, args.model_dir))
    print(f"{args.clips} queued clips, 16:9 540p 5 s, embedded model, SQLite; {args.runs} run(s) of each setup; "
          f"{len(os.sched_getaffinity(0))} cores\n")
    print("| setup | clips/min | queue drained in s | median s per clip (claimed → completed) | workers used "
          "| throughput vs first |")
    print("|---|---|---|---|---|---|")
    base = None
    for (workers, threads), runs in results.items():
        makespan = statistics.median(r["makespan"] for r in runs)
        rate = args.clips / makespan * 60
        base = base or rate
        spread = f" ({min(r['makespan'] for r in runs):.1f}..{max(r['makespan'] for r in runs):.1f})" \
            if len(runs) > 1 else ""
        print(f"| {workers} worker{'s' if workers > 1 else ''} × {threads} thread{'s' if threads > 1 else ''} "
              f"| {rate:.1f} | {makespan:.1f}{spread} | {statistics.median(r['per_clip'] for r in runs):.2f} "
              f"| {min(r['workers_used'] for r in runs):.0f} | **{rate / base:.2f}×** |")
    rates = {setup: args.clips / statistics.median(r["makespan"] for r in runs) * 60 for setup, runs in results.items()}
    if (1, 1) in rates and base:
        cores = len(os.sched_getaffinity(0))
        print(f"\nbound without contention: {cores} one-thread workers make at most {cores} × one alone's "
              f"{rates[(1, 1)]:.1f} clips/min = {cores * rates[(1, 1)]:.1f}, "
              f"**{cores * rates[(1, 1)] / base:.2f}×** the first setup")


if __name__ == "__main__":
    main()
