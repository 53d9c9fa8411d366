"""fal's ``ray-2/modify`` and ``ray-2-flash/reframe`` through the unmodified ``fal-client`` (queue and sync), and
their errors in fal's shapes, over TLS on loopback with the tiny model.

The client reads its hosts at import, so it runs in a fresh interpreter configured by environment variables
(``tests/acceptance/test_fal.py``'s ``run_client``). The source is a 256x144, 1 s MP4 on a loopback host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.acceptance.test_fal import run_client
from tests.acceptance.videohost import VideoHost, mp4_bytes
from tests.conftest import ServerProcess

from dreamreel.media.probe import probe_mp4

APP = "fal-ai/luma-dream-machine"


@pytest.fixture(scope="module")
def videos() -> Iterator[VideoHost]:
    host = VideoHost({"/clip.mp4": mp4_bytes(), "/page.mp4": b"<html>not a video</html>"})
    yield host
    host.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("edits-fal") / "data", tiny_model_dir, tls=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def outcome(tls_server: ServerProcess, videos: VideoHost) -> dict:
    """One client session: a queued modify of the loopback clip (subscribe), a sync reframe of its result's own
    file URL at 720p (run), and a queued modify of a web page, which completes with an error."""
    return run_client(tls_server, f"""
        import json, fal_client
        modified = fal_client.subscribe("{APP}/ray-2/modify", arguments={{
            "video_url": "{videos.url('/clip.mp4')}", "prompt": "the ball turns red", "mode": "adhere_2"}})
        reframed = fal_client.run("{APP}/ray-2-flash/reframe", arguments={{
            "video_url": modified["video"]["url"], "aspect_ratio": "1:1", "resolution": "720p", "prompt": "grass"}})
        handle = fal_client.submit("{APP}/ray-2/modify", arguments={{"video_url": "{videos.url('/page.mp4')}"}})
        try:
            handle.get()
            failed = None
        except fal_client.FalClientHTTPError as exc:
            failed = [exc.status_code, exc.error_type, exc.message]
        print(json.dumps({{"modified": modified, "reframed": reframed, "failed": failed,
                          "failed_id": handle.request_id}}))
    """)


def fetch(server: ServerProcess, url: str, path: Path) -> Path:
    response = httpx.get(url, verify=server.verify, timeout=30)
    assert response.status_code == 200
    path.write_bytes(response.content)
    return path


def luma_view(server: ServerProcess, generation_id: str) -> dict:
    return httpx.get(f"{server.url}/dream-machine/v1/generations/{generation_id}", verify=server.verify).json()


def test_modify_through_the_queue_and_reframe_through_sync(outcome: dict, tls_server: ServerProcess,
                                                           tmp_path: Path) -> None:
    modified = probe_mp4(fetch(tls_server, outcome["modified"]["video"]["url"], tmp_path / "m.mp4"))
    assert (modified.codec, modified.width, modified.height, modified.frames) == ("h264", 960, 540, 24)
    reframed = probe_mp4(fetch(tls_server, outcome["reframed"]["video"]["url"], tmp_path / "r.mp4"))
    assert (reframed.width, reframed.height, reframed.frames) == (720, 720, 24)  # 1:1 at the asked 720p
    modify_id = outcome["modified"]["video"]["url"].split("/generations/")[1].split("/")[0]
    request = luma_view(tls_server, modify_id)["request"]
    assert (request["generation_type"], request["mode"], request["model"]) == ("modify_video", "adhere_2", "ray-2")


def test_a_source_that_is_not_a_video_completes_with_an_error(outcome: dict, tls_server: ServerProcess) -> None:
    status, error_type, message = outcome["failed"]
    assert (status, error_type) == (422, "file_download_error"), outcome["failed"]
    assert str(message).startswith("video_url: "), message  # the reason in fal's field names
    assert luma_view(tls_server, outcome["failed_id"])["state"] == "failed"


@pytest.mark.parametrize("endpoint,body,status,loc,words", [
    ("ray-2/modify", {"video_url": "https://example.com/a.mp4", "mode": "flex_9"}, 422, "mode", "adhere_1"),
    ("ray-2/modify", {"prompt": "no source"}, 422, "video_url", ""),
    ("ray-2/modify", {"video_url": "ftp://example.com/a.mp4"}, 422, "video_url", "video_url"),
    ("ray-2-flash/modify", {"video_url": "file:///etc/passwd"}, 422, "video_url", "scheme"),
    ("ray-2/reframe", {"video_url": "https://example.com/a.mp4"}, 422, "aspect_ratio", ""),
    ("ray-2/reframe", {"video_url": "https://example.com/a.mp4", "aspect_ratio": "2:1"}, 422, "aspect_ratio", ""),
    ("ray-2/modify", {"video_url": "upload:" + "0" * 32}, 404, None, "video_url"),
    ("ray-2/reframe", {"video_url": "generation:nope", "aspect_ratio": "9:16"}, 404, None, "video_url"),
])
def test_bad_input_is_refused_in_fal_shapes(tls_server: ServerProcess, endpoint: str, body: dict, status: int,
                                            loc: str | None, words: str) -> None:
    for prefix in ("", "/fal-run"):  # the queue host and the sync host check alike
        response = httpx.post(f"{tls_server.url}{prefix}/{APP}/{endpoint}", json=body, verify=tls_server.verify)
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        if loc is not None:
            assert detail[0]["loc"] == ["body", loc], detail
            assert words in detail[0]["msg"], detail
        else:
            assert words in detail and response.headers["x-fal-error-type"] == "not_found", response.text
