"""fal's ``image-to-video`` endpoints and ``loop`` through the unmodified ``fal-client`` over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.acceptance.imagehost import ImageHost, data_uri, jpeg_bytes, png_bytes
from tests.acceptance.test_fal import run_client
from tests.conftest import ServerProcess, wait_for

from dreamreel.media.probe import probe_mp4


@pytest.fixture(scope="module")
def images() -> Iterator[ImageHost]:
    host = ImageHost({"/start.jpg": jpeg_bytes((200, 160, 20)), "/text.png": b"plain text, not a picture"})
    yield host
    host.close()


@pytest.fixture(scope="module")
def fal_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("falkf") / "data", tiny_model_dir, tls=True,
                           extra_env={"DREAMREEL_ALLOW_PRIVATE_URLS": "true"}).start()
    yield server
    server.stop()


def fetch(server: ServerProcess, url: str, path: Path) -> Path:
    response = httpx.get(url, verify=server.verify, timeout=60)
    assert response.status_code == 200
    path.write_bytes(response.content)
    return path


@pytest.mark.parametrize("endpoint", ["ray-2/image-to-video", "ray-2-flash/image-to-video"])
def test_image_to_video_start_and_end(fal_server: ServerProcess, images: ImageHost, endpoint: str,
                                      tmp_path: Path) -> None:
    end = data_uri(png_bytes((20, 180, 220), alpha=True))
    result = run_client(fal_server, f"""
        import json, fal_client
        result = fal_client.subscribe("fal-ai/luma-dream-machine/{endpoint}", arguments={{
            "prompt": "a golden kite flies", "image_url": "{images.url('/start.jpg')}",
            "end_image_url": "{end}", "aspect_ratio": "9:16"}})
        print(json.dumps(result))
    """)
    info = probe_mp4(fetch(fal_server, result["video"]["url"], tmp_path / "i2v.mp4"))
    assert (info.width, info.height, info.frames) == (540, 960, 120)
    assert "/start.jpg" in images.requests


def test_end_image_only_and_loop(fal_server: ServerProcess, tmp_path: Path) -> None:
    end = data_uri(png_bytes((240, 240, 240)))
    result = run_client(fal_server, f"""
        import json, fal_client
        ending = fal_client.run("fal-ai/luma-dream-machine/ray-2/image-to-video",
                                arguments={{"prompt": "a paper boat drifts", "end_image_url": "{end}"}})
        looped = fal_client.run("fal-ai/luma-dream-machine/ray-2", arguments={{"prompt": "a spinning ring",
                                                                             "loop": True}})
        print(json.dumps({{"ending": ending, "looped": looped}}))
    """)
    for name in ("ending", "looped"):
        assert probe_mp4(fetch(fal_server, result[name]["video"]["url"], tmp_path / f"{name}.mp4")).frames == 120


def test_fal_request_extended_through_luma(fal_server: ServerProcess, tmp_path: Path) -> None:
    """One row per generation: a fal request id is a Luma ``generation`` keyframe."""
    result = run_client(fal_server, """
        import json, fal_client
        handle = fal_client.submit("fal-ai/luma-dream-machine/ray-2", arguments={"prompt": "a red fox runs"})
        handle.get()
        print(json.dumps({"id": handle.request_id}))
    """)
    created = httpx.post(f"{fal_server.url}/dream-machine/v1/generations", verify=fal_server.verify, json={
        "model": "ray-2", "prompt": "the fox keeps running", "resolution": "540p",
        "keyframes": {"frame0": {"type": "generation", "id": result["id"]}}})
    assert created.status_code == 201, created.text
    url = f"{fal_server.url}/dream-machine/v1/generations/{created.json()['id']}"
    done = wait_for(lambda: (g := httpx.get(url, verify=fal_server.verify).json())["state"] in ("completed", "failed")
                    and g, timeout=180)
    assert done["state"] == "completed", done["failure_reason"]
    assert probe_mp4(fetch(fal_server, done["assets"]["video"], tmp_path / "ext.mp4")).frames == 240


def test_image_errors_in_fal_shapes(fal_server: ServerProcess, images: ImageHost) -> None:
    base = f"{fal_server.url}/fal-ai/luma-dream-machine"
    for field, value in (("image_url", "gopher://example.com/x.png"), ("end_image_url", "data:text/plain,hello")):
        response = httpx.post(f"{base}/ray-2/image-to-video", json={"prompt": "x", field: value},
                              verify=fal_server.verify)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
    # Non-image bytes are only found by the worker: fal completes the request with an error.
    submitted = httpx.post(f"{base}/ray-2/image-to-video", json={"prompt": "x", "image_url": images.url("/text.png")},
                           verify=fal_server.verify).json()
    status = wait_for(lambda: (r := httpx.get(submitted["status_url"], verify=fal_server.verify)).status_code == 200
                      and r.json(), timeout=180)
    assert status["status"] == "COMPLETED" and "keyframes.frame0" in status["error"]
    result = httpx.get(submitted["response_url"], verify=fal_server.verify)
    assert result.status_code == 422 and "not a usable image" in result.json()["detail"]
    assert result.json()["error_type"] == "image_load_error"
