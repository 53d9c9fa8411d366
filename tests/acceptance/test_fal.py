"""fal's queue and sync APIs, driven by the unmodified ``fal-client`` over TLS on loopback.

The client reads its hosts at import, so each scenario runs in a fresh interpreter configured only
through environment variables, as a user switching hosts would do.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.acceptance.receiver import Receiver, verifies_with_jwks
from tests.conftest import ServerProcess, wait_for

from dreamreel.media.probe import probe_mp4

APP = "fal-ai/luma-dream-machine/ray-2"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("fal") / "data", tiny_model_dir, tls=True).start()
    yield server
    server.stop()


def run_client(server: ServerProcess, script: str, timeout: float = 180) -> dict:
    """Run ``script`` with fal_client configured by env vars only; it prints one JSON line."""
    env = {
        "PATH": "/usr/bin:/bin",
        "FAL_KEY": "any-key",
        "FAL_QUEUE_RUN_HOST": server.host,
        "FAL_RUN_HOST": f"{server.host}/fal-run",
        "SSL_CERT_FILE": str(server.ca_file),
        "NO_PROXY": "127.0.0.1",
    }
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_subscribe_with_logs_and_queue_updates(tls_server: ServerProcess, tmp_path) -> None:
    # Keep the only worker busy so the subscribed request visibly waits in the queue first.
    httpx.post(f"{tls_server.url}/dream-machine/v1/generations", json={"prompt": "busy", "resolution": "1080p"},
               verify=tls_server.verify)
    result = run_client(tls_server, f"""
        import json, fal_client
        updates = []
        def on_queue_update(update):
            if isinstance(update, fal_client.InProgress):
                updates.append(["in_progress", [log["message"] for log in update.logs]])
            elif isinstance(update, fal_client.Queued):
                updates.append(["queued", update.position])
        result = fal_client.subscribe("{APP}", arguments={{"prompt": "a red ball bouncing on green grass"}},
                                      with_logs=True, on_queue_update=on_queue_update)
        print(json.dumps({{"result": result, "updates": updates}}))
    """)
    kinds = [kind for kind, _ in result["updates"]]
    assert "queued" in kinds and "in_progress" in kinds
    assert kinds.index("queued") < kinds.index("in_progress")
    messages = [m for kind, logs in result["updates"] if kind == "in_progress" for m in logs]
    assert any("Denoising step" in m for m in messages), messages
    video = result["result"]["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"] == "output.mp4"
    response = httpx.get(video["url"], verify=tls_server.verify)
    assert response.status_code == 200 and len(response.content) == video["file_size"]
    path = tmp_path / "fal.mp4"
    path.write_bytes(response.content)
    info = probe_mp4(path)
    assert (info.codec, info.width, info.height, info.frames) == ("h264", 960, 540, 120)  # fal's 540p default


def test_run_returns_the_result_directly(tls_server: ServerProcess) -> None:
    result = run_client(tls_server, f"""
        import json, fal_client
        print(json.dumps(fal_client.run("{APP}", arguments={{"prompt": "a blue cube", "aspect_ratio": "9:16"}})))
    """)
    assert result["video"]["url"].startswith(tls_server.url)


def test_submit_then_cancel_a_queued_request(tmp_path, tiny_model_dir) -> None:
    server = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0, tls=True).start()  # nothing runs
    try:
        result = run_client(server, f"""
            import json, fal_client
            handle = fal_client.submit("{APP}", arguments={{"prompt": "a green star"}})
            queued = handle.status()
            handle.cancel()
            after = handle.status()
            try:
                handle.get()
                outcome = "result"
            except fal_client.FalClientHTTPError as exc:
                outcome = [exc.status_code, exc.error_type]
            print(json.dumps({{"id": handle.request_id, "queued": type(queued).__name__,
                              "position": queued.position, "after": type(after).__name__, "outcome": outcome}}))
        """)
        assert result["queued"] == "Queued" and result["position"] == 0
        assert result["after"] == "Completed"
        assert result["outcome"] == [400, "client_cancelled"]
        luma = httpx.get(f"{server.url}/dream-machine/v1/generations/{result['id']}", verify=server.verify).json()
        assert luma["state"] == "failed" and "cancel" in luma["failure_reason"]
        again = httpx.put(f"{server.url}/fal-ai/luma-dream-machine/requests/{result['id']}/cancel",
                          verify=server.verify)
        assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}
        unknown = httpx.put(f"{server.url}/fal-ai/luma-dream-machine/requests/nope/cancel", verify=server.verify)
        assert unknown.status_code == 404

        # X-Fal-Request-Timeout is a start deadline: with no worker, the request times out unstarted.
        base = f"{server.url}/fal-ai/luma-dream-machine"
        late = httpx.post(f"{base}/ray-2", json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": "1.0"},
                          verify=server.verify).json()
        done = wait_for(lambda: (r := httpx.get(late["status_url"], verify=server.verify)).status_code == 200 and r)
        assert done.json()["status"] == "COMPLETED" and done.json()["error_type"] == "request_timeout"
        timed_out = httpx.get(late["response_url"], verify=server.verify)
        assert timed_out.status_code == 504
        assert timed_out.headers["x-fal-request-timeout-type"] == "user"
        assert timed_out.headers["x-fal-error-type"] == "request_timeout"
    finally:
        server.stop()


def test_webhook_signed_delivered_once_after_failures(tls_server: ServerProcess) -> None:
    receiver = Receiver(fail_first=2)
    try:
        submitted = httpx.post(
            f"{tls_server.url}/fal-ai/luma-dream-machine/ray-2", params={"fal_webhook": receiver.url},
            json={"prompt": "a purple ring"}, verify=tls_server.verify,
        ).json()
        wait_for(lambda: len(receiver.deliveries) >= 1, timeout=120)
        wait_for(lambda: receiver.calls >= 3, timeout=30)
        time.sleep(1.5)  # a duplicate would arrive within the next backoff
        assert len(receiver.deliveries) == 1 and receiver.calls == 3
        body, headers = receiver.deliveries[0]
        payload = json.loads(body)
        assert payload["request_id"] == submitted["request_id"] and payload["status"] == "OK"
        assert payload["payload"]["video"]["url"].split("?")[0].endswith("video.mp4")  # then ?exp=&sig=
        jwks = httpx.get(f"{tls_server.url}/.well-known/jwks.json", verify=tls_server.verify).json()
        assert verifies_with_jwks(jwks, headers, body)
        assert not verifies_with_jwks(jwks, headers, body + b" ")

        # The same generation through the two other dialects.
        rid = submitted["request_id"]
        aiml = httpx.get(f"{tls_server.url}/v2/video/generations", params={"generation_id": rid},
                         verify=tls_server.verify).json()
        # The same file (the signed query differs only if an expiry bucket ended in between).
        assert aiml["status"] == "completed"
        assert aiml["video"]["url"].split("?")[0] == payload["payload"]["video"]["url"].split("?")[0]
        luma = httpx.get(f"{tls_server.url}/dream-machine/v1/generations/{rid}", verify=tls_server.verify).json()
        assert luma["state"] == "completed"
        assert luma["assets"]["video"].split("?")[0] == aiml["video"]["url"].split("?")[0]
    finally:
        receiver.close()


def test_errors_in_fal_shapes(tls_server: ServerProcess) -> None:
    base = f"{tls_server.url}/fal-ai/luma-dream-machine"
    bad = httpx.post(f"{base}/ray-2", json={"prompt": "x", "resolution": "4k"}, verify=tls_server.verify)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "resolution"]
    missing = httpx.post(f"{base}/ray-2", json={}, verify=tls_server.verify)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "prompt"]
    unknown = httpx.get(f"{base}/requests/00000000-0000-0000-0000-000000000000/status", verify=tls_server.verify)
    assert unknown.status_code == 404 and unknown.headers["x-fal-error-type"] == "not_found"
    wrong_app = httpx.post(f"{tls_server.url}/fal-ai/other-model/ray-2", json={"prompt": "x"},
                           verify=tls_server.verify)
    assert wrong_app.status_code == 404
    priority = httpx.post(f"{base}/ray-2", json={"prompt": "x"}, headers={"X-Fal-Queue-Priority": "urgent"},
                          verify=tls_server.verify)
    assert priority.status_code == 422 and "X-Fal-Queue-Priority" in priority.json()["detail"]
    no_image = httpx.post(f"{base}/ray-2/image-to-video", json={"prompt": "x"}, verify=tls_server.verify)
    assert no_image.status_code == 422 and no_image.json()["detail"][0]["loc"] == ["body", "image_url"]
    # Image conditioning accepts data: URIs (and URLs); an unsupported scheme is a 422 on the fal field.
    png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/"
           "iZk9HQAAAABJRU5ErkJggg==")
    accepted = httpx.post(f"{base}/ray-2/image-to-video", json={"prompt": "x", "image_url": png},
                          verify=tls_server.verify)
    assert accepted.status_code == 200 and accepted.json()["status"] == "IN_QUEUE"
    ftp = httpx.post(f"{base}/ray-2/image-to-video", json={"prompt": "x", "image_url": "ftp://example.com/a.png"},
                     verify=tls_server.verify)
    assert ftp.status_code == 422 and ftp.json()["detail"][0]["loc"] == ["body", "image_url"]
