"""The API under load: ``wrk`` against the Luma status GET of one ``dreamreel serve``, idle and beside a worker
that generates a 1080p 9 s clip, and that clip's time with and without the load, interleaved in one run.

The server is run as shipped: ``dreamreel serve --workers 1`` with its default settings (SQLite, connection
caps and timeouts on), an API key issued with ``dreamreel keys create`` with limits (so every request resolves
the key and its limits, and every POST counts against its rate limit), the embedded model. One small clip is
made first and is what the idle polls read; the loaded polls read the running 1080p clip, as a client waiting
for it would.

Conditions, alternated ``--repeats`` times so the machine's drift hits them alike:

- **idle**: ``wrk -t2 -c64 -d10s --latency`` with no job running;
- **loaded**: the 1080p 9 s clip is submitted, and once the worker has claimed it ``wrk`` (``--loaded-seconds``
  runs, 5 s: the clip takes about 8 s alone on this machine) runs back to back
  until the clip is done; the first run that ended while the clip was still running gives req/s and p99
  (so they are measured wholly beside the job), and the clip's worker time (claimed to completed, from the
  store) is its loaded time;
- **unloaded clip**: the same clip (same seed) with only a 0.5 s poll of its status.

Targets (issue 30): idle ≥ 3000 req/s and p99 ≤ 20 ms; loaded ≥ 1500 req/s and p99 ≤ 50 ms; loaded clip
≤ 1.25 × unloaded.

Usage: .venv/bin/python bench/bench_api_load.py [--repeats 3] [--connections 64] [--seconds 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import DREAMREEL, ServerProcess  # noqa: E402  (the real-server launcher)

from dreamreel.config import DEFAULT_MODEL_DIR  # noqa: E402
from dreamreel.store import open_store  # noqa: E402

WRK = "/usr/bin/wrk"
PROMPT = "a red ball bouncing on green grass"
SEED = 1234
LUMA = "/dream-machine/v1"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
"""wrk's latency units, in milliseconds."""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int
    """Non-2xx/3xx responses plus socket errors: a run with any is not a valid measurement of polls."""
    cpu_ms_per_request: float = 0.0
    """The API process's own CPU time (user + system, its worker children apart) over the run, per request:
    what each poll costs the machine the worker shares, and steady whatever else the machine runs."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (``/proc/<pid>/stat``; children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_wrk(text: str) -> WrkResult:
    """req/s, latency percentiles and failures from ``wrk --latency`` output."""
    percentiles = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$",
                                                                     text, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        bad += sum(int(n) for n in socket_errors.groups())
    return WrkResult(rps, percentiles["50"], percentiles["99"], requests, bad)


class Bench:
    """One served setup (``dreamreel serve``, one worker, a key with limits) and the wrk runs against it."""

    def __init__(self, root: Path, model_dir: Path, threads: int, connections: int, seconds: int,
                 loaded_seconds: int, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True)
        self.threads, self.connections, self.seconds = threads, connections, seconds
        self.loaded_seconds = loaded_seconds
        self.lua = root / "auth.lua"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMREEL_")}
        self.token = subprocess.run(
            [DREAMREEL, "keys", "create", "--name", "bench", "--rpm", "600", "--concurrency", "2",
             "--max-queued", "20", "--credits", "100000", "--data-dir", str(self.data_dir)],
            env=env, check=True, capture_output=True, text=True).stdout.strip()
        self.lua.write_text(f'wrk.headers["Authorization"] = "Bearer {self.token}"\n')
        self.server = ServerProcess(self.data_dir, model_dir, workers=1)
        self.server.env = {**env, **(extra_env or {})}  # as shipped: none of the test suite's fast leases and polls
        self.server.start()
        self.http = httpx.Client(base_url=self.server.url + LUMA, timeout=60,
                                 headers={"Authorization": f"Bearer {self.token}"})
        self.store = open_store(f"sqlite:///{self.data_dir / 'dreamreel.db'}")

    def submit(self, resolution: str, duration: str) -> str:
        response = self.http.post("/generations", json={
            "prompt": PROMPT, "model": "ray-2", "resolution": resolution, "duration": duration,
            "aspect_ratio": "16:9", "seed": SEED})
        response.raise_for_status()
        return response.json()["id"]

    def state(self, generation_id: str) -> str:
        body = self.http.get(f"/generations/{generation_id}").json()
        if body["state"] == "failed":
            log = self.server.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"generation {generation_id} failed: {body['failure_reason']}\n{log}")
        return body["state"]

    def wait(self, generation_id: str, states: tuple[str, ...], poll_s: float) -> None:
        while self.state(generation_id) not in states:
            time.sleep(poll_s)

    def worker_seconds(self, generation_id: str) -> float:
        stored = self.store.get(generation_id)
        assert stored is not None and stored.started_at and stored.finished_at
        return stored.finished_at - stored.started_at

    def wrk(self, generation_id: str, seconds: int) -> tuple[subprocess.Popen, float]:
        """A wrk run started, and the API's CPU seconds when it started."""
        return subprocess.Popen(
            [WRK, f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds}s", "--latency",
             "-s", str(self.lua), f"{self.server.url}{LUMA}/generations/{generation_id}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), self.api_cpu()

    def api_cpu(self) -> float:
        assert self.server.proc is not None
        return cpu_seconds(self.server.proc.pid)

    def finish(self, run: subprocess.Popen, cpu_at_start: float) -> WrkResult:
        output = run.communicate()[0]
        result = parse_wrk(output)
        cpu_ms = (self.api_cpu() - cpu_at_start) * 1e3 / max(1, result.requests)
        return dataclasses.replace(result, cpu_ms_per_request=cpu_ms)

    def idle(self, generation_id: str) -> WrkResult:
        return self.finish(*self.wrk(generation_id, self.seconds))

    def loaded(self, resolution: str, duration: str) -> tuple[WrkResult, float]:
        """wrk back to back beside one clip; the first run wholly inside it, and the clip's worker time."""
        generation_id = self.submit(resolution, duration)
        self.wait(generation_id, ("dreaming", "completed"), 0.01)
        inside: WrkResult | None = None
        while True:
            result = self.finish(*self.wrk(generation_id, self.loaded_seconds))
            if self.state(generation_id) == "completed":
                break
            inside = inside or result
        if inside is None:
            raise RuntimeError(f"the clip took less than one {self.loaded_seconds} s wrk run: use a longer clip "
                               "or --loaded-seconds")
        return inside, self.worker_seconds(generation_id)

    def unloaded(self, resolution: str, duration: str) -> float:
        generation_id = self.submit(resolution, duration)
        self.wait(generation_id, ("completed",), 0.5)
        return self.worker_seconds(generation_id)

    def close(self) -> None:
        self.http.close()
        self.store.close()
        self.server.stop()


def spread(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)}..{format(max(values), fmt)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--loaded-seconds", type=int, default=5,
                        help="each wrk run's length beside the clip: the first run wholly inside it is measured, "
                             "and a 1080p 9 s clip takes about 8 s alone here")
    parser.add_argument("--resolution", default="1080p")
    parser.add_argument("--duration", default="9s", choices=["5s", "9s"])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the untimed first clip at the measured size (the small clip still warms the model)")
    args = parser.parse_args()
    idle: list[WrkResult] = []
    loaded: list[WrkResult] = []
    clip: dict[str, list[float]] = {"loaded": [], "unloaded": []}
    with tempfile.TemporaryDirectory(prefix="dreamreel-api-load-") as tmp:
        bench = Bench(Path(tmp), args.model_dir, args.threads, args.connections, args.seconds, args.loaded_seconds)
        try:
            polled = bench.submit("540p", "5s")
            bench.wait(polled, ("completed",), 0.2)
            if args.warmup:
                bench.unloaded(args.resolution, args.duration)  # warm: the worker has made this size once
            for repeat in range(args.repeats):
                steps = ("idle", "unloaded", "loaded") if repeat % 2 == 0 else ("loaded", "unloaded", "idle")
                for step in steps:
                    if step == "idle":
                        idle.append(bench.idle(polled))
                    elif step == "unloaded":
                        clip["unloaded"].append(bench.unloaded(args.resolution, args.duration))
                    else:
                        result, seconds = bench.loaded(args.resolution, args.duration)
                        loaded.append(result)
                        clip["loaded"].append(seconds)
        finally:
            bench.close()
    bad = sum(r.bad for r in idle + loaded)
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s (beside the clip -d{args.loaded_seconds}s) "
          "--latency on the Luma status GET, "
          f"an API key with limits, {args.repeats} repeats interleaved; clip {args.resolution} {args.duration}, "
          f"embedded model, one worker beside the API\n")
    print("| condition | req/s median | req/s min..max | p99 ms median | p99 ms min..max | p50 ms median | "
          "API CPU ms/request |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in (("no job running", idle), (f"beside a {args.resolution} {args.duration} clip", loaded)):
        rps, p99, p50 = [r.rps for r in runs], [r.p99_ms for r in runs], [r.p50_ms for r in runs]
        cpu = statistics.median(r.cpu_ms_per_request for r in runs)
        print(f"| {name} | {statistics.median(rps):.0f} | {spread(rps, '.0f')} | {statistics.median(p99):.1f} | "
              f"{spread(p99, '.1f')} | {statistics.median(p50):.1f} | {cpu:.2f} |")
    print("\n| clip (worker: claimed to completed) | median s | min..max s |")
    print("|---|---|---|")
    for name in ("unloaded", "loaded"):
        print(f"| {name} | {statistics.median(clip[name]):.2f} | {spread(clip[name], '.2f')} |")
    ratio = statistics.median(clip["loaded"]) / statistics.median(clip["unloaded"])
    print(f"\nloaded / unloaded clip = {ratio:.3f}; failed requests (non-2xx/3xx, socket errors): {bad}")


if __name__ == "__main__":
    main()
