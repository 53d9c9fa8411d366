"""``callback_url`` receives the Luma Generation object on dreaming, completed (and failed)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from tests.conftest import ServerProcess, wait_for


class Receiver:
    """A loopback HTTP endpoint that records POSTed JSON, failing the first ``fail_first`` calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        """Accepted deliveries: raw body and lower-cased headers."""
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls += 1
                if receiver.calls <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                receiver.deliveries.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


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
        assert completed["assets"]["video"].endswith("video.mp4")
        assert completed["request"]["callback_url"] == receiver.url
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
