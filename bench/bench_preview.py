"""progress_video overhead: wall time of one job's denoise+decode with and without previews, in one run.

The same plan (same seed) is generated through the production backend with ``preview=None`` and with
the worker's ``PreviewWriter`` (real SQLite store and files, as in a worker), alternating, and the
median ratio is reported per preview interval.

Usage: .venv/bin/python bench/bench_preview.py [--model-dir models/tiny-ltx] [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Generation, State
from dreamreel.core.request import GenerationRequest
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import plan_generation
from dreamreel.files import LocalFiles
from dreamreel.store.sqlite import SQLiteStore
from dreamreel.worker.preview import DEFAULT_BUDGET, PreviewWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/tiny-ltx"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--intervals", default="2.0,0.5")
    args = parser.parse_args()

    backend = LTXConditionBackend(args.model_dir)
    request = GenerationRequest(prompt="a red ball bounces on green grass", resolution="540p")
    plan = plan_generation(request, backend.native_grid(), seed=1, steps=args.steps,
                           guidance_scale=backend.default_guidance)
    root = Path(tempfile.mkdtemp())
    store, files = SQLiteStore(root / "db.sqlite"), LocalFiles(root / "files")

    cpu_times: dict[float | None, list[float]] = {}

    def run(interval: float | None) -> tuple[float, int, float]:
        now = time.time()
        job = store.create(Generation(id=f"bench-{time.time_ns()}", owner="bench", dialect="luma", request=request,
                                      state=State.QUEUED, seed=1, created_at=now, updated_at=now))
        claimed = store.claim("bench-worker", 600)
        assert claimed is not None and claimed.id == job.id
        writer = None if interval is None else PreviewWriter(
            store, files, job.id, "bench-worker", fps=backend.native_grid().fps, interval_s=interval)
        started, cpu = time.perf_counter(), time.process_time()
        backend.generate(plan, lambda *_: None, lambda: False, preview=writer)
        elapsed = time.perf_counter() - started
        cpu_times.setdefault(interval, []).append(time.process_time() - cpu)
        store.fail(job.id, "bench-worker", FailureCode.INTERNAL, "bench done")
        return elapsed, writer.count if writer else 0, writer.seconds if writer else 0.0

    run(None)  # warm-up
    intervals = [float(v) for v in args.intervals.split(",")]
    base: list[float] = []
    results: dict[float, list[tuple[float, int, float]]] = {i: [] for i in intervals}
    for _ in range(args.repeats):
        base.append(run(None)[0])
        for interval in intervals:
            results[interval].append(run(interval))
    plain = statistics.median(base)
    print(f"model {args.model_dir}, {args.steps} steps, native {plan.native_width}x{plan.native_height}x"
          f"{plan.native_frames}, median of {args.repeats}\n")
    plain_cpu = statistics.median(cpu_times[None][1:])  # [0] is the warm-up
    print("| previews | job wall s | wall ratio | job CPU s | CPU ratio | previews per job | wall s per preview |")
    print("|---|---|---|---|---|---|---|")
    print(f"| off | {plain:.2f} | 1.00x | {plain_cpu:.2f} | 1.00x | 0 | - |")
    for interval, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        count = statistics.median(r[1] for r in runs)
        per = sum(r[2] for r in runs) / max(1, sum(r[1] for r in runs))
        cpu = statistics.median(cpu_times[interval])
        print(f"| every >= {interval:g} s (and {DEFAULT_BUDGET:g}x own cost) | {wall:.2f} | {wall / plain:.2f}x "
              f"| {cpu:.2f} | {cpu / plain_cpu:.2f}x | {count:g} | {per:.2f} |")


if __name__ == "__main__":
    main()
