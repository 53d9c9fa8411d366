"""``callback_url`` receives the Luma Generation object on dreaming, completed (and failed)."""

from __future__ import annotations

import httpx
from tests.acceptance.receiver import Receiver
from tests.conftest import ServerProcess, wait_for


def test_callback_receives_dreaming_then_completed(server: ServerProcess) -> None:
    receiver = Receiver(fail_first=1)  # the first delivery fails: the outbox must retry it
    try:
        created = httpx.post(
            f"{server.url}/dream-machine/v1/generations",
            json={"prompt": "a yellow star circles", "resolution": "540p", "callback_url": receiver.url},
        ).json()
        wait_for(lambda: [b["state"] for b in receiver.bodies].count("completed") == 1, timeout=120)
        states = [b["state"] for b in receiver.bodies]
        assert states == ["dreaming", "completed"], states
        completed = receiver.bodies[-1]
        assert completed["id"] == created["id"]
        assert completed["assets"]["video"].split("?")[0].endswith("video.mp4")  # then ?exp=&sig=
        assert httpx.get(completed["assets"]["video"]).status_code == 200  # the signed URL, no headers
        assert completed["request"]["callback_url"] == receiver.url
        metrics = httpx.get(f"{server.url}/metrics").text  # the API process counted the attempts
        assert 'dreamreel_webhook_deliveries_total{outcome="retry"} 1.0' in metrics
        assert 'dreamreel_webhook_deliveries_total{outcome="delivered"} 2.0' in metrics
        assert 'dreamreel_jobs_submitted_total{dialect="luma",kind="video",model="ray-2"} 1.0' in metrics
    finally:
        receiver.close()


def test_callback_to_private_address_is_refused_without_allowlist(tmp_path, tiny_model_dir) -> None:
    receiver = Receiver()
    server = ServerProcess(
        tmp_path / "data", tiny_model_dir, extra_env={"DREAMREEL_ALLOW_PRIVATE_URLS": "false"}
    ).start()
    try:
        created = httpx.post(
            f"{server.url}/dream-machine/v1/generations",
            json={"prompt": "a red ball", "resolution": "540p", "callback_url": receiver.url},
        ).json()
        wait_for(
            lambda: httpx.get(f"{server.url}/dream-machine/v1/generations/{created['id']}").json()["state"]
            == "completed"
        )
        import sqlite3
        import time

        time.sleep(1.0)
        db = sqlite3.connect(server.data_dir / "dreamreel.db")
        abandoned = db.execute("SELECT COUNT(*) FROM outbox WHERE abandoned = 1").fetchone()[0]
        assert receiver.calls == 0
        assert abandoned >= 1
    finally:
        server.stop()
        receiver.close()
