"""What an operator's machines read: ``/readyz``, ``/metrics`` (who may read it, what it counts, labels that stay
bounded) and ``dreamreel status``, on in-process apps over ASGI (fast) and the real CLI. A served run with two
workers (exact counts, worker metrics, capacity, JSON logs, request ids, the no-secrets scan) is
``test_observed_run.py``."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import DREAMREEL

from dreamreel.api.app import create_app
from dreamreel.api.keyring import issue_key
from dreamreel.api.server_secret import API_KEY_PEPPER, derive_key, load_server_secret
from dreamreel.config import Settings
from dreamreel.core.accounts import KeyLimits
from dreamreel.core.failures import FailureCode
from dreamreel.store import open_store
from dreamreel.worker.metrics import WorkerMetrics

ADMIN = "operator-token"
KEYS = ["client-key-1", "client-key-2"]
LUMA = "/dream-machine/v1"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _app(tmp_path: Path, **settings: Any) -> Any:
    return create_app(Settings(data_dir=tmp_path / "data", admin_token=ADMIN, api_keys=KEYS, **settings),
                      run_dispatcher=False)


async def _calls(app: Any, calls: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return [await client.request(method, url, **kwargs) for method, url, kwargs in calls]


def run(app: Any, *calls: tuple[str, str, dict]) -> list[httpx.Response]:
    return asyncio.run(_calls(app, list(calls)))


def bearer(token: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: ``(name, sorted labels) -> value``."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_are_for_operators_only(tmp_path: Path) -> None:
    app = _app(tmp_path)
    none, client, admin = run(app, ("GET", "/metrics", {}), ("GET", "/metrics", bearer(KEYS[0])),
                              ("GET", "/metrics", bearer(ADMIN)))
    assert (none.status_code, client.status_code, admin.status_code) == (401, 403, 200)
    assert "detail" in none.json() and "admin" in client.json()["detail"]
    assert admin.headers["content-type"].startswith("text/plain")
    # An allowed network reads it without a token (the ASGI test client is 127.0.0.1); another is refused.
    allowed = _app(tmp_path / "allowed", metrics_allow_from=["127.0.0.0/8"])
    other = _app(tmp_path / "other", metrics_allow_from=["10.0.0.0/8"])
    assert run(allowed, ("GET", "/metrics", {}))[0].status_code == 200
    assert run(other, ("GET", "/metrics", {}))[0].status_code == 401


def test_metrics_count_the_queue_and_the_traffic_with_bounded_labels(tmp_path: Path) -> None:
    app = _app(tmp_path)
    prompts = [f"a secret prompt number {n}" for n in range(4)]
    created = run(app, *[("POST", f"{LUMA}/generations", {"json": {"prompt": p}, **bearer(KEYS[n % 2])})
                         for n, p in enumerate(prompts)],
                  ("POST", f"{LUMA}/generations", {"json": {"prompt": "quick", "model": "ray-flash-2"},
                                                   **bearer(KEYS[0])}))
    ids = [response.json()["id"] for response in created]
    polls = run(app, *[("GET", f"{LUMA}/generations/{gid}", bearer(KEYS[0])) for gid in ids],
                *[("GET", f"/v1/videos/{gid}", bearer(KEYS[0])) for gid in ids],
                ("GET", f"/no/such/{ids[0]}", {}), ("GET", f"{LUMA}/generations/{'0' * 36}", bearer(KEYS[0])))
    assert [p.status_code for p in polls].count(200) == 6  # key 2's generations are 404 to key 1
    stopped = run(app, ("POST", "/v1/videos", {"json": {"prompt": "never mind", "model": "ray-2"}, **bearer(KEYS[0])}))
    assert run(app, ("DELETE", f"/v1/videos/{stopped[0].json()['id']}", bearer(KEYS[0])))[0].status_code == 200
    scraped, catalog = run(app, ("GET", "/metrics", bearer(ADMIN)), ("GET", "/models", bearer(KEYS[1])))
    scrape = scraped.text
    capacity = {model["name"]: (model["queued"], model["running"], model["workers_loaded"])
                for model in catalog.json()["models"]}
    assert capacity == {"ray-2": (4, 0, 0), "ray-flash-2": (1, 0, 0)}  # the capacity report, per model
    assert catalog.json()["workers"] == {"live": 0, "busy": 0}
    values = samples(scrape)
    assert values[("dreamreel_jobs", (("model", "ray-2"), ("state", "queued")))] == 4
    assert values[("dreamreel_jobs", (("model", "ray-flash-2"), ("state", "queued")))] == 1
    assert values[("dreamreel_workers", (("busy", "false"),))] == 0
    assert values[("dreamreel_webhook_outbox_backlog", ())] == 0
    assert values[("dreamreel_jobs_stop_requests_total", (("dialect", "openai"), ("model", "ray-2"),
                                                           ("state", "queued")))] == 1
    assert values[("dreamreel_jobs_submitted_total", (("dialect", "luma"), ("kind", "video"), ("model", "ray-2")))] \
        == 4
    created_series = ("dreamreel_http_requests_total",
                      (("method", "POST"), ("route", f"{LUMA}/generations"), ("status", "201")))
    assert values[created_series] == 5
    polled = ("dreamreel_http_requests_total",
              (("method", "GET"), ("route", f"{LUMA}/generations/{{generation_id}}"), ("status", "200")))
    assert values[polled] == 3  # the fast path counts as the route it answered for
    assert values[("dreamreel_http_requests_total", (("method", "GET"), ("route", "unmatched"),
                                                      ("status", "404")))] == 1
    # No generation id, prompt or key in any label; one series per route template, not per path.
    routes = {dict(labels).get("route") for name, labels in values if name == "dreamreel_http_requests_total"}
    assert routes == {f"{LUMA}/generations", f"{LUMA}/generations/{{generation_id}}", "/v1/videos",
                      "/v1/videos/{video_id}", "unmatched"}
    for secret in [*ids, *prompts, *KEYS, ADMIN]:
        assert secret not in scrape
    assert "by_key" not in scrape  # per-key series only when the operator asks
    per_key = _app(tmp_path / "per-key", metrics_per_key=True)
    run(per_key, *[("POST", f"{LUMA}/generations", {"json": {"prompt": "x"}, **bearer(key)}) for key in KEYS])
    by_key = [labels for name, labels in samples(run(per_key, ("GET", "/metrics", bearer(ADMIN)))[0].text)
              if name == "dreamreel_jobs_submitted_by_key_total"]
    assert len(by_key) == 2 and not any(key in str(by_key) for key in KEYS)  # the keys' ids, never their tokens
    # Every metric the operations guide and the Grafana dashboard name is one this server or its workers expose.
    exposed = {name for name, _ in values} | {family.name for family in text_string_to_metric_families(scrape)}
    exposed.add("dreamreel_jobs_submitted_by_key_total")  # the opt-in series, seen above
    for family in WorkerMetrics().registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ())
        exposed |= {family.name, *(family.name + suffix for suffix in suffixes)}
    for doc in (DOCS / "operations.md", DOCS / "grafana-dashboard.json"):
        for used in set(re.findall(r"dreamreel_[a-z_]+", doc.read_text())):
            assert used in exposed, (doc.name, used)


def test_refusals_by_a_keys_own_limits_are_counted_by_limit(tmp_path: Path) -> None:
    app = _app(tmp_path)
    pepper = derive_key(load_server_secret(app.state.settings), API_KEY_PEPPER)
    store = app.state.keyring.store
    _, hasty = issue_key(store, pepper, name="hasty", limits=KeyLimits(rpm=1))
    _, patient = issue_key(store, pepper, name="patient", limits=KeyLimits(max_queued=1))
    _, broke = issue_key(store, pepper, name="broke", limits=KeyLimits(credits=0))
    body = {"json": {"prompt": "x"}}
    answers = run(app, *[("POST", f"{LUMA}/generations", {**body, **bearer(token)})
                         for token in (hasty, hasty, patient, patient, broke)])
    assert [answer.status_code for answer in answers] == [201, 429, 201, 429, 402]
    refused = {dict(labels)["limit"]: value for (name, labels), value in
               samples(run(app, ("GET", "/metrics", bearer(ADMIN)))[0].text).items()
               if name == "dreamreel_key_limit_refusals_total"}
    assert refused == {"requests_per_minute": 1, "queued": 1, "credits": 1}


def test_readyz_needs_the_store_and_writable_storage(tmp_path: Path) -> None:
    app = _app(tmp_path)
    ready = run(app, ("GET", "/readyz", {}))[0]
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "store": "ok", "storage": "ok"}
    storage = app.state.settings.resolved_storage_dir
    shutil.rmtree(storage)
    storage.write_bytes(b"not a directory any more")
    unready = run(app, ("GET", "/readyz", {}))[0]
    assert unready.status_code == 503 and "storage directory is not writable" in unready.json()["detail"]
    assert unready.headers["retry-after"]
    assert run(app, ("GET", "/healthz", {}))[0].status_code == 200  # alive all the same


def test_status_prints_the_queue_workers_and_last_failures(tmp_path: Path) -> None:
    from tests.contract.test_job_store import make_gen, worker_info

    data = tmp_path / "data"
    Settings(data_dir=data).resolved_storage_dir.mkdir(parents=True)
    store = open_store(Settings(data_dir=data).resolved_database_url)
    for n in range(3):
        store.create(make_gen(n))
    job = store.claim("worker-a", 30)
    store.announce_worker(worker_info("worker-a", current_job=job.id))
    broken = store.claim("worker-a", 30)
    store.fail(broken.id, "worker-a", FailureCode.INPUT, "keyframes.frame0: could not load the image")
    store.close()
    out = subprocess.run([DREAMREEL, "status", "--data-dir", str(data)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "queued" in out and "running" in out and "ray-2" in out
    assert "Workers: 1 live, 1 busy" in out and "worker-a" in out and job.id in out
    assert broken.id in out and "could not load the image" in out and "input" in out
    missing = subprocess.run([DREAMREEL, "status", "--data-dir", str(tmp_path / "nowhere")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "no database" in missing.stderr


