"""What serving ``/metrics`` costs the status polls: ``wrk`` on the Luma status GET of one ``dreamreel serve``
(the API-under-load setup of ``bench_api_load.py``: default settings, a key with limits, one idle worker), with
and without a scraper reading ``/metrics`` every ``--scrape-every`` seconds (1 s: fifteen times Prometheus'
default interval), alternated ``--repeats`` times so the machine's drift hits both alike.

A scrape reads the store (queue counts, workers, outbox backlog) and renders every series; the per-request
counting (``HttpMetrics``: one counter and one histogram observation per request) is always on, so the second
table measures it apart: the app alone, in process, over ASGI with no socket, the CPU time of 5000 status polls
with and without the middleware.

Target (issue 32): the status-poll throughput with the scraper at least 95 % of the throughput without.

Usage: .venv/bin/python bench/bench_metrics_cost.py [--repeats 5] [--seconds 10] [--scrape-every 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_api_load import Bench, WrkResult, spread  # noqa: E402  (the served setup and its wrk runs)

from dreamreel.config import DEFAULT_MODEL_DIR, Settings  # noqa: E402

ASGI_POLLS = 5000


class Scraper:
    """A thread reading ``/metrics`` every ``every_s`` seconds until stopped, as Prometheus would."""

    def __init__(self, url: str, every_s: float) -> None:
        self.url = url
        self.every_s = every_s
        self.stop = threading.Event()
        self.scrapes: list[float] = []
        """Seconds each scrape took, client-seen."""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scraper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                response = client.get(self.url)
                response.raise_for_status()
                self.scrapes.append(time.perf_counter() - started)
                self.stop.wait(max(0.0, self.every_s - (time.perf_counter() - started)))


def asgi_poll_cpu(data_dir: Path, with_metrics: bool) -> float:
    """CPU microseconds per Luma status poll of the app alone (fast path), with or without ``HttpMetrics``."""
    from dreamreel.api.app import create_app
    from dreamreel.api.metrics import HttpMetrics

    app = create_app(Settings(data_dir=data_dir, api_keys=["bench-key"]), run_dispatcher=False)
    if not with_metrics:  # the middleware stack is built on the first call: leave it out before that
        app.user_middleware = [m for m in app.user_middleware if m.cls is not HttpMetrics]
    headers = {"Authorization": "Bearer bench-key"}

    async def polls() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            created = await client.post("/dream-machine/v1/generations", json={"prompt": "x"}, headers=headers)
            url = f"/dream-machine/v1/generations/{created.json()['id']}"
            for _ in range(100):  # warm
                await client.get(url, headers=headers)
            started = time.process_time()
            for _ in range(ASGI_POLLS):
                assert (await client.get(url, headers=headers)).status_code == 200
            return (time.process_time() - started) / ASGI_POLLS * 1e6

    return asyncio.run(polls())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--scrape-every", type=float, default=1.0)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--asgi-only", action="store_true", help="only the in-process table (seconds, no wrk)")
    args = parser.parse_args()
    if args.asgi_only:
        with tempfile.TemporaryDirectory(prefix="dreamreel-metrics-cost-") as tmp:
            print_asgi(asgi_rounds(Path(tmp), args.repeats))
        return
    runs: dict[str, list[WrkResult]] = {"without": [], "with": []}
    scrape_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dreamreel-metrics-cost-") as tmp:
        bench = Bench(Path(tmp), args.model_dir, args.threads, args.connections, args.seconds, args.seconds,
                      extra_env={"DREAMREEL_METRICS_ALLOW_FROM": '["127.0.0.0/8"]'})
        try:
            polled = bench.submit("540p", "5s")
            bench.wait(polled, ("completed",), 0.2)
            bench.idle(polled)  # warm
            for repeat in range(args.repeats):
                for condition in ("without", "with") if repeat % 2 == 0 else ("with", "without"):
                    if condition == "without":
                        runs[condition].append(bench.idle(polled))
                        continue
                    with Scraper(f"{bench.server.url}/metrics", args.scrape_every) as scraper:
                        runs[condition].append(bench.idle(polled))
                    scrape_s.extend(scraper.scrapes)
        finally:
            bench.close()
        asgi = asgi_rounds(Path(tmp), args.repeats)
    bad = sum(r.bad for results in runs.values() for r in results)
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s --latency on the Luma status GET (a key "
          f"with limits, one idle worker), {args.repeats} repeats alternated; the scraper reads /metrics every "
          f"{args.scrape_every:g} s\n")
    print("| condition | req/s median | req/s min..max | p99 ms median | API CPU ms/request |")
    print("|---|---|---|---|---|")
    for condition, label in (("without", "no scraper"), ("with", f"scraped every {args.scrape_every:g} s")):
        results = runs[condition]
        rps = [r.rps for r in results]
        print(f"| {label} | {statistics.median(rps):.0f} | {spread(rps, '.0f')} | "
              f"{statistics.median(r.p99_ms for r in results):.1f} | "
              f"{statistics.median(r.cpu_ms_per_request for r in results):.3f} |")
    ratio = statistics.median(r.rps for r in runs["with"]) / statistics.median(r.rps for r in runs["without"])
    pairs = [w.rps / wo.rps for w, wo in zip(runs["with"], runs["without"], strict=True)]
    print(f"\nthroughput scraped / not scraped = {ratio:.3f} (per repeat {spread(pairs, '.3f')}); "
          f"{len(scrape_s)} scrapes, median {statistics.median(scrape_s) * 1e3:.1f} ms; failed requests: {bad}\n")
    print_asgi(asgi)


def asgi_rounds(root: Path, repeats: int) -> dict[str, list[float]]:
    asgi: dict[str, list[float]] = {"without": [], "with": []}
    for repeat in range(repeats):
        for condition in ("without", "with") if repeat % 2 == 0 else ("with", "without"):
            asgi[condition].append(asgi_poll_cpu(root / f"asgi-{condition}-{repeat}", condition == "with"))
    return asgi


def print_asgi(asgi: dict[str, list[float]]) -> None:
    print(f"| the app alone, {ASGI_POLLS} status polls over ASGI (client included) | CPU µs per poll, median | "
          "min..max |")
    print("|---|---|---|")
    for condition, label in (("without", "without HttpMetrics"), ("with", "with HttpMetrics (as served)")):
        print(f"| {label} | {statistics.median(asgi[condition]):.1f} | {spread(asgi[condition], '.1f')} |")
    added = statistics.median(asgi["with"]) - statistics.median(asgi["without"])
    print(f"\nHttpMetrics adds {added:.1f} µs of CPU to a poll")


if __name__ == "__main__":
    main()
