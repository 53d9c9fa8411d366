"""End-to-end generation latency: a cold CLI run and warm server runs per resolution, in one run.

Usage: .venv/bin/python bench/bench_generate.py [--model-dir models/tiny-ltx] [--repeats 3] [--cases 540p:5s,4k:5s]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import DREAMREEL, ServerProcess  # noqa: E402  (reuse the real-server launcher)


def cold_cli(model_dir: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [DREAMREEL, "generate", "a red ball bouncing on green grass", "--model-dir", str(model_dir),
         "--resolution", "540p", "-o", str(out)],
        check=True, capture_output=True,
    )
    return time.perf_counter() - started


def warm_server(server: ServerProcess, resolution: str, duration: str) -> tuple[float, float]:
    """(client-seen seconds from POST to completed, worker seconds from claim to finish)."""
    base = f"{server.url}/dream-machine/v1/generations"
    started = time.perf_counter()
    gid = httpx.post(base, json={"prompt": "a red ball", "resolution": resolution, "duration": duration}).json()["id"]
    while (g := httpx.get(f"{base}/{gid}").json())["state"] not in ("completed", "failed"):
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    assert g["state"] == "completed", g
    import sqlite3

    db = sqlite3.connect(server.data_dir / "dreamreel.db")
    s, f = db.execute("SELECT started_at, finished_at FROM generations WHERE id = ?", (gid,)).fetchone()
    return elapsed, f - s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "tiny-ltx")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default="540p:5s,720p:5s,1080p:5s,540p:9s,4k:5s",
                        help="comma-separated resolution:duration requests, the first is the ratio base")
    args = parser.parse_args()
    cases = [tuple(case.split(":")) for case in args.cases.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cold = [cold_cli(args.model_dir, Path(tmp) / "c.mp4") for _ in range(args.repeats)]
        server = ServerProcess(Path(tmp) / "data", args.model_dir).start()
        try:
            warm_server(server, "540p", "5s")  # load the model in the worker
            rows = []
            for resolution, duration in cases:
                runs = [warm_server(server, resolution, duration) for _ in range(args.repeats)]
                rows.append((resolution, duration, statistics.median(r[0] for r in runs),
                             statistics.median(r[1] for r in runs)))
        finally:
            server.stop()
    base = rows[0][2]
    print(f"cold `dreamreel generate` 16:9 540p 5s: median {statistics.median(cold):.2f} s over {len(cold)} runs\n")
    print("| 16:9 request | client-seen s (median) | worker s | ratio to 540p 5s |")
    print("|---|---|---|---|")
    for resolution, duration, client_s, worker_s in rows:
        print(f"| {resolution} {duration} | {client_s:.2f} | {worker_s:.2f} | {client_s / base:.2f}x |")


if __name__ == "__main__":
    main()
