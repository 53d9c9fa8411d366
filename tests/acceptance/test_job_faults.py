"""Faults inside a job stop or fail that job only, and the same worker goes on to the next one.

One API process (no workers of its own) and one ``dreamreel worker`` process the tests start themselves, so
they can read its exit status and change its memory limit while it runs (``prlimit``). Outcomes are read
from the store's rows: a deleted generation is a 404 through the API, and ``failure_code`` is not in every
dialect's body. The worker is given a short grace period and, for the flash model only, a tiny speed
allowance, so the time limit can be reached in seconds while ``ray-2`` jobs keep a generous one. Both processes
read a models config giving ``ray-2`` (and so ``ray-flash-2``, the default's alias) a memory budget.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.acceptance.imagehost import ImageHost
from tests.conftest import DREAMREEL, ServerProcess, models_config_env, wait_for

LUMA = "/dream-machine/v1/generations"
FAL = "/fal-ai/luma-dream-machine"
SMALL = {"prompt": "a red ball", "resolution": "540p", "aspect_ratio": "1:1"}
"""The cheapest job there is: 540x540 x 120 frames, about a second of a warm worker."""
LONG_ENCODE = {"prompt": "a red ball", "resolution": "1080p", "duration": "9s"}
"""Denoising ends within a second; decoding, assembling and encoding 216 1080p frames takes several more."""
GRACE_S = 2.0
EXIT_STUCK_JOB = 70
WORKER_ENV = {
    "DREAMREEL_JOB_TIME_BASE_SECONDS": "0.5",
    "DREAMREEL_MODEL_SECONDS_PER_MEGAPIXEL_FRAME": json.dumps({"ray-flash-2": 0.002}),
    "DREAMREEL_JOB_STOP_GRACE_SECONDS": str(GRACE_S),
    "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0",
    "MALLOC_ARENA_MAX": "2",
}
"""ray-flash-2: 0.5 s + 0.002 s per delivered megapixel-frame (1080p 9 s: 1.4 s); ray-2 keeps the default.
No previews (a job's time and memory stay the same from run to run). Two malloc arenas: glibc otherwise maps
another 64 MB arena whenever threads contend, and the worker's address space would drift from job to job by
more than the memory budget below leaves to spare."""


class WorkerProcess:
    """``dreamreel worker`` against the API's data directory, restarted by :meth:`ensure` if it has exited."""

    def __init__(self, api: ServerProcess, model_dir: Path) -> None:
        self.api, self.model_dir = api, model_dir
        self.proc: subprocess.Popen | None = None
        self.log_path = api.data_dir / "worker.log"

    def ensure(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [DREAMREEL, "worker", "--data-dir", str(self.api.data_dir), "--model-dir", str(self.model_dir)],
                    env={**self.api.env, **WORKER_ENV}, stdout=log, stderr=subprocess.STDOUT,
                )
        return self.proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


BUDGET_GIB = 40
"""``ray-2``'s memory budget in the models config: generous (nothing here is refused at submission); an
out-of-memory reason names it."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("faults")
    env = models_config_env(root, f'[models.ray-2]\nfamily = "ltx-condition"\npath = "{tiny_model_dir}"\n'
                                  f"memory_budget_gb = {BUDGET_GIB}\n")
    server = ServerProcess(root / "data", tiny_model_dir, workers=0, extra_env=env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(api: ServerProcess, tiny_model_dir: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(api, tiny_model_dir)
    yield process
    process.stop()


def row(api: ServerProcess, gid: str) -> dict:
    """The generation's row, deleted or not."""
    with sqlite3.connect(api.data_dir / "dreamreel.db") as db:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT * FROM generations WHERE id = ?", (gid,)).fetchone()
    assert found is not None, gid
    return dict(found)


def ended(api: ServerProcess, gid: str, timeout: float = 60) -> dict:
    return wait_for(lambda: (r := row(api, gid))["state"] in ("completed", "failed", "cancelled") and r, timeout)


def luma(api: ServerProcess, body: dict) -> str:
    response = httpx.post(api.url + LUMA, json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def files_of(api: ServerProcess, gid: str) -> list[Path]:
    directory = api.data_dir / "files" / "generations" / gid
    return sorted(directory.iterdir()) if directory.exists() else []


def denoised(api: ServerProcess, gid: str) -> bool:
    """Denoising is over (every step recorded) and encoding has begun (its temp file exists)."""
    r = row(api, gid)
    return r["state"] == "running" and r["progress_total"] > 0 and r["progress_step"] == r["progress_total"] \
        and bool(files_of(api, gid))


def assert_gone_and_next_started(api: ServerProcess, gid: str, stopped_at: float, following: str) -> None:
    """``gid`` ended cancelled with no file left, and the same worker started ``following`` within 2 s."""
    final = ended(api, gid, timeout=10)
    assert (final["state"], final["failure_code"]) == ("cancelled", "cancelled"), final
    assert not json.loads(final["assets"] or "{}").get("video"), final["assets"]
    wait_for(lambda: not files_of(api, gid), timeout=5)
    nxt = wait_for(lambda: (r := row(api, following))["started_at"] and r, timeout=10)
    assert nxt["worker_id"] == final["worker_id"]
    assert nxt["started_at"] - stopped_at < 2.0, nxt["started_at"] - stopped_at


def test_cancel_after_denoising_stops_every_stage_removes_its_files_and_frees_the_worker(
    api: ServerProcess, worker: WorkerProcess,
) -> None:
    proc = worker.ensure()
    cancelled = httpx.post(f"{api.url}{FAL}/ray-2", json=LONG_ENCODE, timeout=10).json()["request_id"]
    source = luma(api, SMALL)

    # fal's cancel once denoising is over: the VAE decode, frame assembly or encoding is under way.
    wait_for(lambda: denoised(api, cancelled), timeout=60, interval=0.05)
    stopped_at = time.time()
    response = httpx.put(f"{api.url}{FAL}/requests/{cancelled}/cancel", timeout=10)
    assert response.json() == {"status": "CANCELLATION_REQUESTED"}
    assert_gone_and_next_started(api, cancelled, stopped_at, following=source)
    assert ended(api, source)["state"] == "completed"

    # Luma's DELETE while an upscale re-encodes: it stops mid-clip and leaves nothing behind.
    upscale = httpx.post(f"{api.url}{LUMA}/{source}/upscale", json={"resolution": "4k"}, timeout=10)
    assert upscale.status_code == 201, upscale.text
    upscaled = upscale.json()["id"]
    after = luma(api, SMALL)
    wait_for(lambda: row(api, upscaled)["progress_step"] >= 3 and files_of(api, upscaled), timeout=60, interval=0.05)
    stopped_at = time.time()
    assert httpx.delete(f"{api.url}{LUMA}/{upscaled}", timeout=10).status_code == 204
    assert_gone_and_next_started(api, upscaled, stopped_at, following=after)
    assert row(api, upscaled)["progress_step"] < 120  # stopped mid-clip, not after re-encoding all of it
    assert (api.data_dir / "files" / "generations" / source / "video.mp4").exists()  # the source is untouched

    # A generation deleted while it runs, whatever the stage: none of its files stay.
    assert httpx.delete(f"{api.url}{LUMA}/{after}", timeout=10).status_code == 204
    assert ended(api, after, timeout=10)["state"] == "cancelled"
    wait_for(lambda: not files_of(api, after), timeout=5)
    assert proc.poll() is None


def test_time_limit_fails_the_job_with_its_reason_and_frees_the_worker(
    api: ServerProcess, worker: WorkerProcess,
) -> None:
    proc = worker.ensure()
    slow = luma(api, {**LONG_ENCODE, "model": "ray-flash-2"})  # 0.5 + 1920*1080*216/1e6 * 0.002 = 1.4 s
    after = luma(api, SMALL)

    final = ended(api, slow)
    assert (final["state"], final["failure_code"]) == ("failed", "time_limit"), final
    assert final["failure_reason"] == "the job exceeded its time limit of 1.4 s"
    assert final["finished_at"] - final["started_at"] < 1.4 + GRACE_S
    assert not files_of(api, slow)
    body = httpx.get(f"{api.url}{LUMA}/{slow}", timeout=10).json()
    assert (body["state"], body["failure_reason"]) == ("failed", final["failure_reason"])

    nxt = wait_for(lambda: (r := row(api, after))["started_at"] and r, timeout=10)
    assert nxt["worker_id"] == final["worker_id"] and nxt["started_at"] - final["finished_at"] < 2.0
    assert httpx.delete(f"{api.url}{LUMA}/{after}", timeout=10).status_code == 204
    ended(api, after, timeout=10)
    assert proc.poll() is None


def test_faults_fail_only_their_job_and_the_same_worker_completes_the_next(
    api: ServerProcess, worker: WorkerProcess,
) -> None:
    proc = worker.ensure()
    host = ImageHost({"/garbage.png": b"\x89PNG\r\n\x1a\n" + os.urandom(2000)})
    try:
        warm = luma(api, SMALL)  # also the clip an upscale below reads
        assert ended(api, warm)["state"] == "completed"
        # A memory budget for this worker: what it holds now plus 130 MB. A 1:1 540p job fits (its largest
        # block, in the VAE decode, is 72 MB; it peaks ~85 MB up); a 21:9 one decodes a clip 2.5x as wide and
        # needs a 181 MB block there, which torch's allocator cannot get.
        size = _vm_size(proc.pid)
        soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_AS)
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (size + 130 * 2**20, hard))
        try:
            too_big = luma(api, {**SMALL, "aspect_ratio": "21:9"})
            garbage = luma(api, {**SMALL, "keyframes": {"frame0": {"type": "image", "url": host.url("/garbage.png")}}})
            video = api.data_dir / "files" / "generations" / warm / "video.mp4"
            video.write_bytes(video.read_bytes()[:3000])  # the stored clip an upscale reads is corrupt
            broken = httpx.post(f"{api.url}{LUMA}/{warm}/upscale", json={"resolution": "1080p"}, timeout=10)
            broken = broken.json()["id"]
            after = luma(api, SMALL)
            outcomes = {name: ended(api, gid) for name, gid in
                        [("oom", too_big), ("input", garbage), ("internal", broken), ("after", after)]}
        finally:
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (soft, hard))
    finally:
        host.close()

    oom, bad_input, internal = outcomes["oom"], outcomes["input"], outcomes["internal"]
    assert (oom["state"], oom["failure_code"]) == ("failed", "out_of_memory"), oom
    assert oom["failure_reason"].startswith(  # the clip asked for and made (21:9 at the tiny model's 64 px), the budget
        f"the job ran out of memory on its worker (ray-2 at 540p 21:9 5 s, made at 160x64 x 41 frames; its memory "
        f"budget is {BUDGET_GIB} GiB): ")
    assert "can't allocate memory" in oom["failure_reason"] or "not enough memory" in oom["failure_reason"]
    assert (bad_input["state"], bad_input["failure_code"]) == ("failed", "input"), bad_input
    assert bad_input["failure_reason"].startswith("keyframes.frame0: ")
    assert (internal["state"], internal["failure_code"]) == ("failed", "internal"), internal
    assert internal["failure_reason"].startswith("generation failed: ")
    assert outcomes["after"]["state"] == "completed", outcomes["after"]
    assert len({o["worker_id"] for o in outcomes.values()}) == 1 and proc.poll() is None
    assert not any(files_of(api, gid) for gid in (too_big, garbage, broken))


def test_a_job_stuck_past_its_limit_is_failed_and_its_worker_exits_for_a_fresh_one(
    api: ServerProcess, worker: WorkerProcess,
) -> None:
    proc = worker.ensure()
    with socket.socket() as stall:  # accepts connections (the kernel's backlog) and never answers
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        url = f"http://127.0.0.1:{stall.getsockname()[1]}/start.png"
        # The worker blocks in the image fetch (a socket read, 15 s timeout) where no cancel check runs.
        stuck = luma(api, {**SMALL, "model": "ray-flash-2", "keyframes": {"frame0": {"type": "image", "url": url}}})
        assert proc.wait(30) == EXIT_STUCK_JOB
    final = row(api, stuck)
    limit = "0.57"  # 0.5 + 540*540*120/1e6 * 0.002
    assert (final["state"], final["failure_code"]) == ("failed", "time_limit"), final
    assert final["failure_reason"] == (
        f"the job exceeded its time limit of {limit} s; it did not stop within {GRACE_S:g} s, so its worker restarted")
    assert not files_of(api, stuck)


def _vm_size(pid: int) -> int:
    """The process's mapped address space in bytes (what ``RLIMIT_AS`` bounds)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")
