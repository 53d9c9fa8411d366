"""An operator's view of one served run, end to end: a keyed API with JSON logs at info level, two worker
processes with their own metrics ports, and jobs through all four dialects that complete, fail and are
cancelled. ``/metrics`` is scraped with ``prometheus_client``'s parser while the jobs wait and after they end,
and every counter must equal what happened; the capacity report must lose the workers within a lease of
their death and find a new one, while ``/readyz`` stays ready; one request's id must be on its API line, its
worker's stage lines and each of its callback deliveries; and no key, URL signature or ``data:`` payload may
appear anywhere in the run's logs."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.acceptance.imagehost import ImageHost, data_uri, png_bytes
from tests.acceptance.receiver import Receiver
from tests.acceptance.test_observability import samples
from tests.conftest import ServerProcess, free_port, secrets_in, start_worker, stop_all, wait_for

KEY = "observed-run-key-7f3a9c"
AUTH = {"Authorization": f"Bearer {KEY}"}
FAL_AUTH = {"Authorization": f"Key {KEY}"}
FAL = "/fal-ai/luma-dream-machine"
TRACED = "trace-luma-0001"
STAGES = ("queue_wait", "denoise", "decode_encode", "run", "end_to_end")
IMAGE = data_uri(png_bytes((200, 40, 40)))


class Run:
    """The served run and what the test did to it."""

    def __init__(self, server: ServerProcess, receiver: Receiver, images: ImageHost) -> None:
        self.server = server
        self.receiver = receiver
        self.images = images
        self.workers: list[subprocess.Popen] = []
        self.worker_ports: list[int] = []
        self.ids: dict[str, str] = {}
        """Name in this test -> generation id (the store's)."""
        self.polls_before_workers: dict[tuple, float] = {}
        """The API's scrape with every job queued and no worker yet."""
        self.capacity_before_workers: dict = {}

    def post(self, path: str, body: dict, headers: dict | None = None, **kwargs) -> dict:
        response = httpx.post(f"{self.server.url}{path}", json=body, headers=headers or AUTH, timeout=30, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def start_worker(self) -> subprocess.Popen:
        port = free_port()
        env = {**self.server.env, "DREAMREEL_WORKER_METRICS_PORT": str(port)}
        worker = start_worker(self.server.data_dir, self.server.model_dir, env)
        self.workers.append(worker)
        self.worker_ports.append(port)
        return worker

    def states(self) -> dict[str, tuple[str, str | None]]:
        with sqlite3.connect(self.server.data_dir / "dreamreel.db") as db:
            rows = db.execute("SELECT id, state, failure_code FROM generations WHERE deleted = 0").fetchall()
        return {gid: (state, code) for gid, state, code in rows}

    def api_metrics(self) -> dict[tuple, float]:
        return samples(httpx.get(f"{self.server.url}/metrics", timeout=30).text)

    def capacity(self) -> dict:
        return httpx.get(f"{self.server.url}/models", headers=AUTH, timeout=30).json()


def total(scrape: dict[tuple, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in scrape.items()
               if sample == name and labels.items() <= dict(sample_labels).items())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Run]:
    """The jobs are all queued before any worker starts (so the first scrape sees them waiting and the queued
    cancels never reach a worker); then two workers run the rest."""
    server = ServerProcess(tmp_path_factory.mktemp("observed") / "data", tiny_model_dir, workers=0,
                           log_level="info", extra_env={"DREAMREEL_API_KEYS": json.dumps([KEY]),
                                                        "DREAMREEL_LOG_FORMAT": "json"}).start()
    receiver = Receiver()
    images = ImageHost({})  # every path is a 404: a keyframe that cannot be fetched fails its job at the worker
    observed = Run(server, receiver, images)
    try:
        _submit_everything(observed)
        observed.polls_before_workers = observed.api_metrics()
        observed.capacity_before_workers = observed.capacity()
        observed.start_worker()
        observed.start_worker()
        wait_for(lambda: all(state in ("completed", "failed", "cancelled")
                             for state, _ in observed.states().values()), timeout=120)
        yield observed
    finally:
        stop_all(observed.workers, [server])
        receiver.close()


def _submit_everything(run: Run) -> None:
    """Two clips complete (Luma's traced, with callbacks; OpenAI's), two fail at the worker on a keyframe that
    cannot be fetched (fal's, AI/ML's), two are stopped while queued (a fal cancel, an OpenAI delete).
    ``ray-flash-2``: the fast preset's encoder keeps the clips short of the run's time."""
    ids = run.ids
    missing = f"{run.images.base}/missing.png"
    ids["luma_done"] = run.post("/dream-machine/v1/generations", {
        "prompt": "a red ball rolls", "model": "ray-flash-2", "resolution": "540p", "callback_url": run.receiver.url,
        "keyframes": {"frame0": {"type": "image", "url": IMAGE}}}, {**AUTH, "X-Request-Id": TRACED})["id"]
    ids["openai_done"] = run.post("/v1/videos", {"prompt": "a yellow star", "model": "ray-flash-2",
                                                 "size": "320x240", "seconds": "4"})["id"]
    ids["fal_failed"] = run.post(f"{FAL}/ray-flash-2/image-to-video", {"prompt": "x", "image_url": missing},
                                 FAL_AUTH, params={"fal_webhook": run.receiver.url})["request_id"]
    ids["aiml_failed"] = run.post("/v2/video/generations", {
        "model": "luma/ray-flash-2", "prompt": "x", "keyframes": {"frame0": {"type": "image", "url": missing}},
    })["id"].split(":")[0]
    ids["fal_cancelled"] = run.post(f"{FAL}/ray-flash-2", {"prompt": "never"}, FAL_AUTH,
                                    params={"fal_webhook": run.receiver.url})["request_id"]
    ids["openai_deleted"] = run.post("/v1/videos", {"prompt": "never", "model": "ray-flash-2", "size": "320x240",
                                                    "seconds": "4"})["id"]
    cancel = httpx.put(f"{run.server.url}{FAL}/requests/{ids['fal_cancelled']}/cancel", headers=FAL_AUTH, timeout=30)
    deleted = httpx.delete(f"{run.server.url}/v1/videos/{ids['openai_deleted']}", headers=AUTH, timeout=30)
    assert (cancel.status_code, deleted.status_code) == (202, 200), (cancel.text, deleted.text)


SUBMITTED = {"luma": 1, "fal": 2, "aiml": 1, "openai": 2}
COMPLETED = {"luma": 1, "openai": 1}
FAILED = {"fal": 1, "aiml": 1}
CALLBACKS = 2 + 1 + 1
"""Luma notifies dreaming and completed; fal notifies the end (one failed, one cancelled while queued)."""
MODEL = "ray-flash-2"


def test_metrics_count_exactly_what_happened(run: Run) -> None:
    before = run.polls_before_workers
    assert total(before, "dreamreel_jobs", state="queued", model=MODEL) == 4  # 6 made, 2 stopped while queued
    assert total(before, "dreamreel_workers") == 0
    for dialect, count in SUBMITTED.items():
        assert total(before, "dreamreel_jobs_submitted_total", dialect=dialect, model=MODEL, kind="video") == count
    assert total(before, "dreamreel_jobs_stop_requests_total", state="queued") == 2
    assert total(before, "dreamreel_jobs_stop_requests_total", dialect="fal", state="queued") == 1
    assert run.capacity_before_workers["workers"]["live"] == 0
    queued = {model["name"]: model["queued"] for model in run.capacity_before_workers["models"]}
    assert queued[MODEL] == 4

    ends = Counter(state for state, _ in run.states().values())
    assert ends == {"completed": 2, "failed": 2, "cancelled": 1}  # the deleted one is gone from the store
    wait_for(lambda: len(run.receiver.bodies) >= CALLBACKS, timeout=30)
    after = wait_for(lambda: (scrape := run.api_metrics())
                     and total(scrape, "dreamreel_webhook_deliveries_total", outcome="delivered") >= CALLBACKS
                     and scrape)
    assert total(after, "dreamreel_webhook_deliveries_total", outcome="delivered") == CALLBACKS
    assert total(after, "dreamreel_webhook_deliveries_total") == CALLBACKS  # no retries, refusals or give-ups
    assert total(after, "dreamreel_webhook_outbox_backlog") == 0
    assert total(after, "dreamreel_jobs") == 0  # nothing queued or running
    assert total(after, "dreamreel_workers", busy="false") == 2
    routes = {"/dream-machine/v1/generations": 1, f"{FAL}/{{endpoint}}": 2, "/v2/video/generations": 1,
              "/v1/videos": 2}
    for route, count in routes.items():
        assert total(after, "dreamreel_http_requests_total", route=route, method="POST") == count, route
        assert total(after, "dreamreel_http_request_seconds_count", route=route, method="POST") == count, route

    workers = [samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text) for port in run.worker_ports]
    finished = {name: sum(total(worker, "dreamreel_jobs_finished_total", outcome=outcome) for worker in workers)
                for name, outcome in (("completed", "completed"), ("failed", "failed"), ("cancelled", "cancelled"))}
    assert finished == {"completed": 2, "failed": 2, "cancelled": 0}
    for dialect, count in COMPLETED.items():
        assert sum(total(w, "dreamreel_jobs_finished_total", outcome="completed", dialect=dialect)
                   for w in workers) == count
    for dialect, count in FAILED.items():
        assert sum(total(w, "dreamreel_jobs_finished_total", outcome="failed", dialect=dialect, failure_code="input")
                   for w in workers) == count
    for stage in STAGES:  # every completed job once in every stage's histogram, and nothing else
        assert sum(total(w, "dreamreel_job_stage_seconds_count", stage=stage, model=MODEL) for w in workers) == 2
        assert sum(total(w, "dreamreel_job_stage_seconds_bucket", stage=stage, le="+Inf") for w in workers) == 2
    assert all(total(w, "dreamreel_model_load_seconds") > 0 for w in workers)  # each loaded the model once
    assert all(total(w, "dreamreel_worker_busy") == 0 for w in workers)
    assert all(total(w, "dreamreel_worker_peak_rss_bytes") > 100e6 for w in workers)
    assert not any(labels for w in workers for (name, labels) in w
                   if any(value in run.ids.values() or value == KEY for _, value in labels))


def test_one_request_id_follows_its_generation_to_the_worker_and_the_callbacks(run: Run) -> None:
    gid = run.ids["luma_done"]
    api = _lines(run.server.log_path)
    queued = [line for line in api if line.get("generation_id") == gid and line.get("stage") == "queued"]
    assert [line["request_id"] for line in queued] == [TRACED]
    assert queued[0]["dialect"] == "luma" and queued[0]["model"] == MODEL
    deliveries = [line for line in api if line.get("generation_id") == gid and line.get("stage") == "callback"]
    assert [(line["request_id"], line["status"]) for line in deliveries] == [(TRACED, "delivered")] * 2
    worker = [line for path in run.server.data_dir.glob("worker-*.log") for line in _lines(path)]
    stages = {line["stage"]: line for line in worker if line.get("generation_id") == gid and "stage" in line}
    assert set(stages) == set(STAGES)
    assert {line["request_id"] for line in stages.values()} == {TRACED}
    assert all(line["duration_s"] >= 0 for line in stages.values())
    sent = [headers for body, headers in run.receiver.deliveries if body and json.loads(body).get("id") == gid]
    assert [headers["x-request-id"] for headers in sent] == [TRACED] * 2
    # Another generation's lines carry its own (made) request id, never this one.
    other = run.ids["openai_done"]
    assert {line.get("request_id") for line in worker if line.get("generation_id") == other} - {None, TRACED}


def test_capacity_loses_dead_workers_within_a_lease_and_finds_a_new_one_while_ready(run: Run) -> None:
    lease_s = float(run.server.env["DREAMREEL_LEASE_SECONDS"])
    assert run.capacity()["workers"]["live"] == 2
    for worker in run.workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    killed = time.monotonic()
    ready = []

    def gone() -> bool:
        ready.append(httpx.get(f"{run.server.url}/readyz", timeout=10).status_code)
        return run.capacity()["workers"]["live"] == 0

    wait_for(gone, timeout=lease_s + 5)
    assert time.monotonic() - killed <= lease_s + 1.5
    assert run.capacity()["models"][0]["workers_loaded"] == 0
    run.start_worker()
    wait_for(lambda: ready.append(httpx.get(f"{run.server.url}/readyz", timeout=10).status_code)
             or run.capacity()["workers"]["live"] == 1, timeout=60)
    assert set(ready) == {200}, ready


def test_the_runs_logs_are_json_and_hold_no_secret(run: Run) -> None:
    """Every line the API and both workers wrote is one JSON object; the key, signed URLs' signatures and the
    ``data:`` keyframe appear nowhere. Runs last: the signed download below is part of what it reads."""
    done = httpx.get(f"{run.server.url}/dream-machine/v1/generations/{run.ids['luma_done']}", headers=AUTH).json()
    video = done["assets"]["video"]
    assert "sig=" in video and httpx.get(video, timeout=30).status_code == 200
    kept = httpx.get(f"{run.server.url}/v1/videos?limit=1", headers={**AUTH, "X-Request-Id": "t-42"})
    assert kept.headers["x-request-id"] == "t-42"
    made = httpx.get(f"{run.server.url}/healthz", headers={"X-Request-Id": "no spaces allowed"})
    assert len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != "no spaces allowed"
    time.sleep(0.3)  # the access log lines of the last requests
    paths = [run.server.log_path, *run.server.data_dir.glob("worker-*.log")]
    texts = [path.read_text() for path in paths]
    for path in paths:
        assert all({"time", "level", "logger", "message"} <= set(line) for line in _lines(path)), path
    everything = "\n".join(texts)
    assert KEY not in everything
    assert video.split("sig=")[1].split("&")[0] not in everything
    assert "base64," not in everything and IMAGE[30:90] not in everything
    access = [line for line in _lines(run.server.log_path) if line["logger"] == "uvicorn.access"]
    assert len(access) > 20
    assert [line["request_id"] for line in access if "/v1/videos?limit=1" in line["message"]] == ["t-42"]
    assert any(line.get("request_id") == made.headers["x-request-id"] for line in access)


def test_the_suites_log_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The end-of-run scan of every served log (tests/conftest.py) is not vacuous: it finds a key, an unredacted
    signature and a data: payload, and passes what core/logs.py leaves."""
    leaky = tmp_path / "serve-1.log"
    leaky.write_text(f"GET /files/a.mp4?exp=1&sig=0123456789abcdef Authorization: Bearer {KEY}\n{IMAGE}\n")
    clean = tmp_path / "serve-2.log"
    clean.write_text("GET /files/a.mp4?exp=1&sig=[redacted] Authorization: Bearer [redacted] data:[redacted]\n")
    found = secrets_in([leaky, clean, tmp_path / "never-written.log"], {KEY})
    assert found == ["serve-1.log: a key or token", "serve-1.log: a URL signature (&sig=0123456789abcdef...)",
                     f"serve-1.log: a data: payload ({IMAGE[IMAGE.index('base64,'):][:40]}...)"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
