"""Upscale through the official ``lumaai`` SDK against a live server with two API keys (two owners)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import lumaai
import pytest
from lumaai import LumaAI
from tests.conftest import ServerProcess, wait_for

from dreamreel.media.probe import probe_mp4

KEYS = ("key-alice", "key-bob")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("upscale") / "data", tiny_model_dir,
        extra_env={"DREAMREEL_API_KEYS": json.dumps(list(KEYS))},
    ).start()
    yield proc
    proc.stop()


def _client(server: ServerProcess, key: str = KEYS[0]) -> LumaAI:
    return LumaAI(auth_token=key, base_url=f"{server.url}/dream-machine/v1", max_retries=0)


def _finished(client: LumaAI, generation_id: str):
    return wait_for(
        lambda: (g := client.generations.get(generation_id)).state in ("completed", "failed") and g, timeout=300
    )


def test_upscale_makes_a_new_generation_at_exactly_the_requested_size(keyed_server: ServerProcess, tmp_path) -> None:
    client = _client(keyed_server)
    source = client.generations.create(prompt="a green star drifts left on sand", model="ray-2", aspect_ratio="16:9",
                                       resolution="540p", duration="5s")
    source = _finished(client, source.id)
    assert source.state == "completed", source.failure_reason

    upscaled = client.generations.upscale(source.id, resolution="1080p", generation_type="upscale_video")
    assert upscaled.id != source.id
    assert upscaled.state in ("queued", "dreaming")
    assert upscaled.request.generation_type == "upscale_video"
    assert upscaled.request.resolution == "1080p"
    done = _finished(client, upscaled.id)
    assert done.state == "completed", done.failure_reason

    path = tmp_path / "upscaled.mp4"
    response = httpx.get(done.assets.video, headers={"authorization": f"Bearer {KEYS[0]}"}, timeout=60)
    assert response.status_code == 200
    path.write_bytes(response.content)
    info = probe_mp4(path)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 1920, 1080)
    assert info.frames == 120 and info.fps == pytest.approx(24.0)
    assert httpx.get(done.assets.image).status_code == 200

    # The source is untouched: still completed, still its own 960x540 video.
    again = client.generations.get(source.id)
    assert again.state == "completed" and again.assets.video.split("?")[0] == source.assets.video.split("?")[0]
    original = tmp_path / "source.mp4"
    original.write_bytes(httpx.get(source.assets.video, timeout=60).content)
    assert (probe_mp4(original).width, probe_mp4(original).height) == (960, 540)

    # The upscale is listed like any generation, newest first.
    assert [g.id for g in client.generations.list(limit=2).generations] == [upscaled.id, source.id]


def test_upscale_refusals(keyed_server: ServerProcess) -> None:
    alice, bob = _client(keyed_server, KEYS[0]), _client(keyed_server, KEYS[1])
    done = _finished(alice, alice.generations.create(prompt="a red ball on grass", model="ray-2", resolution="720p").id)
    assert done.state == "completed"
    alice_count = alice.generations.list(limit=100).count

    with pytest.raises(lumaai.NotFoundError):
        alice.generations.upscale("00000000-0000-0000-0000-000000000000", resolution="1080p")
    with pytest.raises(lumaai.NotFoundError):  # someone else's generation does not exist for you
        bob.generations.upscale(done.id, resolution="1080p")

    for bad, words in (("8k", "resolution"), ("720p", "not higher"), ("540p", "not higher")):
        with pytest.raises(lumaai.UnprocessableEntityError) as caught:
            alice.generations.upscale(done.id, resolution=bad)
        assert words in json.dumps(caught.value.body), (bad, caught.value.body)
    with pytest.raises(lumaai.UnprocessableEntityError) as caught:
        alice.generations.upscale(done.id)
    assert "resolution is required" in caught.value.body["detail"]

    # Not completed yet: a long job is still queued or dreaming when the upscale arrives.
    slow = alice.generations.create(prompt="a blue ring on water", model="ray-2", resolution="1080p", duration="9s")
    with pytest.raises(lumaai.ConflictError) as caught:
        alice.generations.upscale(slow.id, resolution="4k")
    assert "only a completed generation can be upscaled" in caught.value.body["detail"]
    alice.generations.delete(slow.id)

    # No refused upscale queued anything; bob has nothing.
    assert alice.generations.list(limit=100).count == alice_count
    assert bob.generations.list(limit=100).count == 0
