"""The official ``lumaai`` SDK against a live dreamreel server on loopback."""

from __future__ import annotations

import time

import httpx
import lumaai
import pytest
from lumaai import LumaAI
from tests.conftest import ServerProcess

from dreamreel.media.probe import probe_mp4


def _client(server: ServerProcess) -> LumaAI:
    return LumaAI(auth_token="local-key", base_url=f"{server.url}/dream-machine/v1", max_retries=0)


def test_create_poll_list_get_download_delete(server: ServerProcess, tmp_path) -> None:
    client = _client(server)
    created = client.generations.create(
        prompt="a red ball bouncing on green grass",
        model="ray-2",
        aspect_ratio="9:16",
        resolution="540p",
        duration="5s",
    )
    assert created.state == "queued"
    assert created.request.prompt == "a red ball bouncing on green grass"

    assert created.progress == 0 and created.queue_position is None  # extensions; a position only on a GET

    states = [created.state]
    progress = [created.progress]
    deadline = time.monotonic() + 120
    generation = created
    while generation.state not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        generation = client.generations.get(created.id)
        progress.append(generation.progress)
        if generation.state == "dreaming":
            assert generation.queue_position is None
        if generation.state != states[-1]:
            states.append(generation.state)
    assert states == ["queued", "dreaming", "completed"], states
    assert progress == sorted(progress) and progress[-1] == 1.0 and all(0 <= p <= 1 for p in progress)
    assert generation.failure_reason is None
    assert generation.model == "ray-2"

    second = client.generations.create(prompt="a blue cube on sand", model="ray-flash-2", resolution="540p")
    page = client.generations.list(limit=1, offset=0)
    assert [g.id for g in page.generations] == [second.id]
    assert page.has_more is True
    page2 = client.generations.list(limit=10, offset=1)
    assert [g.id for g in page2.generations] == [created.id]

    video_url = generation.assets.video
    assert video_url and video_url.startswith(server.url)
    response = httpx.get(video_url, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    path = tmp_path / "download.mp4"
    path.write_bytes(response.content)
    info = probe_mp4(path)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height) == (540, 960)
    assert info.fps == pytest.approx(24.0)
    assert info.duration_s == pytest.approx(5.0, abs=0.05)
    assert generation.assets.image and httpx.get(generation.assets.image).status_code == 200

    client.generations.delete(created.id)
    with pytest.raises(lumaai.NotFoundError):
        client.generations.get(created.id)
    assert httpx.get(video_url).status_code == 404


def test_ping_credits_and_lists(server: ServerProcess) -> None:
    client = _client(server)
    assert client.ping.check().message == "pong"
    assert client.credits.get().credit_balance > 0
    assert isinstance(client.generations.concepts.list(), list)
    models = httpx.get(f"{server.url}/models", headers={"Authorization": "Bearer local-key"}).json()
    assert [model["name"] for model in models["models"]] == ["ray-2", "ray-flash-2"]
    assert [model["speed"] for model in models["models"]] == ["quality", "fast"]
    assert "extend" in models["models"][0]["controls"] and "add_audio" not in models["models"][0]["controls"]
    assert models["durations"] == ["5s", "9s"] and "4k" in models["resolutions"] and "pan_left" in models["concepts"]


def test_unknown_generation_is_404_in_luma_shape(server: ServerProcess) -> None:
    with pytest.raises(lumaai.NotFoundError) as caught:
        _client(server).generations.get("00000000-0000-0000-0000-000000000000")
    assert "not found" in caught.value.body["detail"]
