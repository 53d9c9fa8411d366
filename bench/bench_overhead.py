"""Our own overhead: a warm clip through the HTTP API, the queue and the worker against the same pipeline call
and the same encode in a bare script, interleaved in one run.

The bare side is what any script would do with the model: load it once, then per clip ``engine.render`` and
``media.encode.encode_clip`` into a file (``engine.produce.produce_clip``, the worker's own last mile). The
served side is a user's: ``dreamreel serve`` (one worker, SQLite, the shipped defaults: previews on, 5 s
heartbeats, 1 s cancel checks) on loopback, the ``lumaai`` SDK creating the same clip (same model, prompt, seed,
steps, size) and polling it every 50 ms until it is completed. Both are warm: the model is loaded and one clip
made before the clock starts, so model load stays out (a warm worker never reloads). The repeats alternate bare
and served, so the machine's drift hits both alike; the table gives the median, the spread (min..max) and the
ratio of medians.

Target (issue 30): served ≤ 1.05 × bare, 5 s 540p, the embedded model.

Usage: .venv/bin/python bench/bench_overhead.py [--repeats 7] [--resolution 540p] [--duration 5s]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lumaai import LumaAI  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402  (the real-server launcher)

from dreamreel.config import DEFAULT_MODEL_DIR  # noqa: E402
from dreamreel.core.request import GenerationRequest  # noqa: E402
from dreamreel.engine.catalog import embedded_catalog  # noqa: E402
from dreamreel.engine.produce import produce_clip  # noqa: E402
from dreamreel.engine.registry import load_backend  # noqa: E402
from dreamreel.store import open_store  # noqa: E402

PROMPT = "a red ball bouncing on green grass"
SEED = 1234
POLL_S = 0.05
SHIPPED = {"DREAMREEL_LEASE_SECONDS": "30", "DREAMREEL_HEARTBEAT_SECONDS": "5", "DREAMREEL_POLL_SECONDS": "0.5"}
"""The defaults (``config.Settings``) in place of the test server's fast lease and heartbeat."""


class Bare:
    """The model loaded once in this process; a clip is render + encode (``engine.produce.produce_clip``, which
    the worker runs too: the same steps, guidance and x264 preset), nothing else."""

    def __init__(self, model_dir: Path, resolution: str, duration: str, out: Path) -> None:
        self.entry = embedded_catalog(model_dir).entry("ray-2")
        self.backend = load_backend(self.entry.spec)
        self.request = GenerationRequest(prompt=PROMPT, resolution=resolution, duration_s=int(duration[:-1]),
                                         seed=SEED)
        self.out = out

    def clip(self) -> float:
        started = time.perf_counter()
        produce_clip(self.backend, self.entry, self.request, seed=SEED, sources=None, on_step=lambda *_: None,
                     should_cancel=lambda: False, video_path=self.out / "bare.mp4", poster_path=self.out / "bare.jpg")
        return time.perf_counter() - started


class Served:
    """A user's view: the lumaai SDK against ``dreamreel serve`` on loopback, polling every 50 ms."""

    def __init__(self, server: ServerProcess, resolution: str, duration: str, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self.client = LumaAI(auth_token="local", base_url=f"{server.url}/dream-machine/v1")
        self.resolution, self.duration = resolution, duration
        self.store = open_store(f"sqlite:///{server.data_dir / 'dreamreel.db'}")
        self.worker_s: list[float] = []
        """Per clip, the worker's share: claimed (started) to completed, from the store."""
        self.wait_s: list[float] = []
        """Per clip, submitted to claimed."""
        self.previewed = 0
        """Clips whose ``progress_video`` a poll saw."""

    def clip(self) -> float:
        started = time.perf_counter()
        generation = self.client.generations.create(prompt=PROMPT, model="ray-2", resolution=self.resolution,
                                                    duration=self.duration, aspect_ratio="16:9",
                                                    extra_body={"seed": SEED})
        previewed = False
        while generation.state not in ("completed", "failed"):
            time.sleep(self.poll_s)
            generation = self.client.generations.get(generation.id)
            previewed = previewed or bool(generation.assets and generation.assets.progress_video)
        self.previewed += previewed
        if generation.state != "completed":
            raise RuntimeError(f"generation failed: {generation.failure_reason}")
        elapsed = time.perf_counter() - started
        stored = self.store.get(generation.id)
        self.worker_s.append(stored.finished_at - stored.started_at)
        self.wait_s.append(stored.started_at - stored.created_at)
        return elapsed


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--resolution", default="540p")
    parser.add_argument("--duration", default="5s", choices=["5s", "9s"])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--poll-seconds", type=float, default=POLL_S, help="the client's polling interval")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dreamreel-overhead-") as tmp:
        server = ServerProcess(Path(tmp) / "data", args.model_dir, workers=1, extra_env=SHIPPED).start()
        try:
            served = Served(server, args.resolution, args.duration, args.poll_seconds)
            bare = Bare(args.model_dir, args.resolution, args.duration, Path(tmp))
            served.clip(), bare.clip()  # warm: both models loaded, both paths run once
            times: dict[str, list[float]] = {"bare": [], "served": []}
            for repeat in range(args.repeats):
                order = ("bare", "served") if repeat % 2 == 0 else ("served", "bare")
                for side in order:
                    times[side].append((bare if side == "bare" else served).clip())
        finally:
            server.stop()
    bare_median, served_median = statistics.median(times["bare"]), statistics.median(times["served"])
    print(f"{args.resolution} {args.duration}, {args.repeats} repeats each, interleaved\n")
    print("| path | median s | min..max s |")
    print("|---|---|---|")
    print(f"| bare script (render + encode) | {bare_median:.3f} | {spread(times['bare'])} |")
    print(f"| served (lumaai SDK -> API -> queue -> worker, 50 ms polls) | {served_median:.3f} | "
          f"{spread(times['served'])} |")
    worker, wait = served.worker_s[1:], served.wait_s[1:]  # the warm-up clip left out
    print(f"| served: submitted to claimed (store) | {statistics.median(wait):.3f} | {spread(wait)} |")
    print(f"| served: claimed to completed, the worker (store) | {statistics.median(worker):.3f} | "
          f"{spread(worker)} |")
    print(f"\nserved / bare = {served_median / bare_median:.3f}; "
          f"worker / bare = {statistics.median(worker) / bare_median:.3f}; "
          f"served clips with a progress_video seen: {served.previewed} of {args.repeats + 1}")


if __name__ == "__main__":
    main()
