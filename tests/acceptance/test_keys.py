"""Issued API keys on two API processes sharing one store: isolation in every dialect, per-key limits with
their 429/402 in each dialect's shape, idempotent retries, revocation, and the start-up exposure rules.

No worker runs here (everything stays queued), so each check is a few HTTP calls; the metering test with a
worker is ``test_metering.py``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import lumaai
import pytest
from lumaai import LumaAI
from tests.acceptance.imagehost import png_bytes
from tests.conftest import DREAMREEL, ServerProcess, remember_secret, start_worker, stop_all, wait_for

LUMA = "/dream-machine/v1"
FAL = "/fal-ai/luma-dream-machine"
AIML = "/v2/video/generations"
CHEAP = {"prompt": "a red ball", "resolution": "540p"}
"""A 540p 16:9 5 s clip: one unit (1000 milli-units)."""


def create_key(data_dir: Path, name: str, *flags: str) -> str:
    out = subprocess.run([DREAMREEL, "keys", "create", "--name", name, "--data-dir", str(data_dir), *flags],
                         capture_output=True, text=True, check=True)
    return remember_secret(out.stdout.strip())


@dataclass
class Cluster:
    data_dir: Path
    nodes: list[ServerProcess]
    keys: dict[str, str]

    def client(self, name: str, node: int = 0) -> httpx.Client:
        return httpx.Client(base_url=self.nodes[node].url, timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[name]}"})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("keys") / "data"
    data_dir.mkdir(parents=True)
    keys = {
        "alice": create_key(data_dir, "alice"),
        "bob": create_key(data_dir, "bob"),
        "hasty": create_key(data_dir, "hasty", "--rpm", "3"),
        "queuer": create_key(data_dir, "queuer", "--max-queued", "2"),
        "poor": create_key(data_dir, "poor", "--credits", "1.5"),
        "doomed": create_key(data_dir, "doomed"),
        "boss": create_key(data_dir, "boss", "--admin"),
    }
    env = {"DREAMREEL_KEY_CACHE_SECONDS": "0.5"}
    nodes = [ServerProcess(data_dir, tiny_model_dir, workers=0, extra_env=env).start() for _ in range(2)]
    yield Cluster(data_dir, nodes, keys)
    for node in nodes:
        node.stop()


def test_another_keys_generation_is_a_404_everywhere(cluster: Cluster) -> None:
    alice, bob = cluster.client("alice", 0), cluster.client("bob", 1)
    gid = alice.post(f"{LUMA}/generations", json=CHEAP).json()["id"]
    upload = alice.post("/uploads", content=png_bytes((200, 40, 40))).json()
    assert alice.get(f"{LUMA}/generations/{gid}").status_code == 200

    refused = [
        bob.get(f"{LUMA}/generations/{gid}"),
        bob.delete(f"{LUMA}/generations/{gid}"),
        bob.post(f"{LUMA}/generations/{gid}/upscale", json={"resolution": "1080p"}),
        bob.post(f"{LUMA}/generations", json={**CHEAP, "keyframes": {"frame0": {"type": "generation", "id": gid}}}),
        bob.post(f"{LUMA}/generations", json={**CHEAP, "keyframes": {"frame0": {"type": "image",
                                                                               "url": upload["url"]}}}),
        bob.get(f"{FAL}/requests/{gid}/status"),
        bob.get(f"{FAL}/requests/{gid}"),
        bob.put(f"{FAL}/requests/{gid}/cancel"),
        bob.get(AIML, params={"generation_id": gid}),
        bob.delete(f"/uploads/{upload['id']}"),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused), [(r.request.url.path, r.text) for r in refused]
    assert gid not in [g["id"] for g in bob.get(f"{LUMA}/generations").json()["generations"]]
    with pytest.raises(lumaai.NotFoundError):  # what the SDK raises for it
        LumaAI(auth_token=cluster.keys["bob"], base_url=f"{cluster.nodes[0].url}{LUMA}",
               max_retries=0).generations.get(gid)
    assert alice.get(f"{LUMA}/generations/{gid}").json()["state"] == "queued"  # untouched by bob's attempts
    assert alice.delete(f"/uploads/{upload['id']}").status_code == 204  # the route exists: bob's 404 was his


def test_missing_wrong_and_revoked_keys_are_401_on_every_node(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert httpx.get(f"{node.url}{LUMA}/generations").status_code == 401
        wrong = {"Authorization": "Bearer " + cluster.keys["alice"][:-2] + "xx"}
        assert httpx.get(f"{node.url}{LUMA}/generations", headers=wrong).status_code == 401
        fal = httpx.post(f"{node.url}{FAL}/ray-2", json=CHEAP, headers={"Authorization": "Key nope.nope"})
        assert fal.status_code == 401
    doomed = cluster.client("doomed", 1)
    assert doomed.get(f"{LUMA}/generations").status_code == 200  # node 1 has it cached now
    subprocess.run([DREAMREEL, "keys", "revoke", "doomed", "--data-dir", str(cluster.data_dir)], check=True,
                   capture_output=True)
    started = time.monotonic()
    wait_for(lambda: doomed.get(f"{LUMA}/generations").status_code == 401, timeout=5, interval=0.1)
    assert time.monotonic() - started < 3


def test_an_admin_key_reaches_the_operator_routes_and_a_client_key_does_not(cluster: Cluster) -> None:
    assert cluster.client("boss", 1).get("/admin/workers").json() == {"workers": []}
    assert cluster.client("alice", 1).get("/admin/workers").status_code == 404  # no admin token: looks absent


def test_requests_per_minute_give_429_with_retry_after_in_each_dialect(cluster: Cluster) -> None:
    hasty = [cluster.client("hasty", 0), cluster.client("hasty", 1)]
    for _ in range(5):  # polls are not counted
        assert hasty[0].get(f"{LUMA}/generations").status_code == 200
    created = [hasty[n % 2].post(f"{LUMA}/generations", json=CHEAP).status_code for n in range(3)]
    assert created == [201, 201, 201]
    luma = hasty[1].post(f"{LUMA}/generations", json=CHEAP)
    fal = hasty[0].post(f"{FAL}/ray-2", json=CHEAP)
    aiml = hasty[1].post(AIML, json={"model": "luma/ray-2", **CHEAP})
    for response in (luma, fal, aiml):
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "per minute" in luma.json()["detail"]
    assert "per minute" in fal.json()["detail"]
    assert aiml.json()["statusCode"] == 429 and "per minute" in aiml.json()["message"]
    assert hasty[0].get(f"{LUMA}/generations").json()["count"] == 3


def test_queue_limit_gives_429_once_full(cluster: Cluster) -> None:
    queuer = [cluster.client("queuer", 0), cluster.client("queuer", 1)]
    assert queuer[0].post(f"{LUMA}/generations", json=CHEAP).status_code == 201
    assert queuer[1].post(f"{FAL}/ray-2", json=CHEAP).status_code == 200
    full = queuer[0].post(AIML, json={"model": "luma/ray-2", **CHEAP})
    assert full.status_code == 429 and "queued" in full.json()["message"]
    assert "retry-after" in full.headers


def test_credits_give_402_before_anything_is_queued(cluster: Cluster) -> None:
    poor = cluster.client("poor", 1)
    assert poor.get(f"{LUMA}/credits").json() == {"credit_balance": 1.5}
    assert poor.post(f"{LUMA}/generations", json=CHEAP).status_code == 201  # 1 unit reserved
    assert cluster.client("poor", 0).get(f"{LUMA}/credits").json() == {"credit_balance": 0.5}
    refused = [
        poor.post(f"{LUMA}/generations", json=CHEAP),
        poor.post(f"{FAL}/ray-2", json=CHEAP),
        poor.post(AIML, json={"model": "luma/ray-2", **CHEAP}),
    ]
    assert [r.status_code for r in refused] == [402, 402, 402]
    assert "credits" in refused[0].json()["detail"]
    assert poor.get(f"{LUMA}/generations").json()["count"] == 1


def test_idempotent_retry_on_another_node_creates_one_generation(cluster: Cluster) -> None:
    first_node, second_node = cluster.client("alice", 0), cluster.client("alice", 1)
    before = first_node.get(f"{LUMA}/generations").json()["count"]
    headers = {"Idempotency-Key": "retry-me-1"}
    first = first_node.post(f"{LUMA}/generations", json=CHEAP, headers=headers)
    retry = second_node.post(f"{LUMA}/generations", json=CHEAP, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"] and retry.headers["idempotent-replayed"] == "true"
    assert first_node.get(f"{LUMA}/generations").json()["count"] == before + 1
    other_body = second_node.post(f"{LUMA}/generations", json={**CHEAP, "prompt": "else"}, headers=headers)
    assert other_body.status_code == 422 and "Idempotency-Key" in other_body.json()["detail"]
    fal_first = first_node.post(f"{FAL}/ray-2", json=CHEAP, headers={"Idempotency-Key": "fal-1"})
    fal_retry = second_node.post(f"{FAL}/ray-2", json=CHEAP, headers={"Idempotency-Key": "fal-1"})
    assert fal_first.json()["request_id"] == fal_retry.json()["request_id"]
    assert first_node.get(f"{LUMA}/generations").json()["count"] == before + 2


def test_a_keyless_server_refuses_a_public_address(tmp_path: Path, tiny_model_dir: Path) -> None:
    base = [DREAMREEL, "serve", "--workers", "0", "--data-dir", str(tmp_path), "--model-dir", str(tiny_model_dir),
            "--port", "0"]
    no_public_url = subprocess.run([*base, "--host", "0.0.0.0", "--public-url", ""], capture_output=True,
                                   text=True, timeout=60)
    assert no_public_url.returncode != 0 and "DREAMREEL_PUBLIC_URL" in no_public_url.stderr
    no_keys = subprocess.run([*base, "--host", "0.0.0.0", "--public-url", "https://video.example"],
                             capture_output=True, text=True, timeout=60)
    assert no_keys.returncode != 0 and "--insecure-no-auth" in no_keys.stderr


def test_no_new_work_while_the_output_volume_is_nearly_full(tmp_path: Path, tiny_model_dir: Path) -> None:
    full = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0,
                         extra_env={"DREAMREEL_MIN_FREE_DISK_BYTES": str(10**18)}).start()
    try:
        luma = httpx.post(f"{full.url}{LUMA}/generations", json=CHEAP)
        fal = httpx.post(f"{full.url}{FAL}/ray-2", json=CHEAP)
        upload = httpx.post(f"{full.url}/uploads", content=png_bytes((1, 2, 3)))
        for response in (luma, fal, upload):
            assert response.status_code == 503 and int(response.headers["retry-after"]) > 0
        assert "nearly full" in luma.json()["detail"] and fal.json()["error_type"] == "service_unavailable"
        assert httpx.get(f"{full.url}{LUMA}/generations").json()["count"] == 0  # reads still answer
    finally:
        full.stop()


def test_a_backlog_does_not_delay_another_keys_next_job(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Fair order through the API: a key with a backlog queued first, another key's one job queued last
    (on the other API node), and the first worker to start takes them in turns."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    keys = {"flood": create_key(data_dir, "flood"), "late": create_key(data_dir, "late")}
    nodes = [ServerProcess(data_dir, tiny_model_dir, workers=0).start() for _ in range(2)]
    cluster = Cluster(data_dir, nodes, keys)
    worker = None
    try:
        flood, late = cluster.client("flood", 0), cluster.client("late", 1)
        quick = {**CHEAP, "model": "ray-flash-2"}  # its fast preset: the order is checked, not the pixels
        backlog = [flood.post(f"{LUMA}/generations", json=quick).json()["id"] for _ in range(4)]
        mine = late.post(f"{LUMA}/generations", json=quick).json()["id"]
        worker = start_worker(data_dir, tiny_model_dir, nodes[0].env)
        wait_for(lambda: late.get(f"{LUMA}/generations/{mine}").json()["state"] == "completed", timeout=120)
        started = [flood.get(f"{LUMA}/generations/{gid}").json()["state"] != "queued" for gid in backlog]
        assert started[0] and not any(started[2:]), started  # one of the backlog ran first, then the late key
    finally:
        stop_all([worker] if worker else [], nodes)
