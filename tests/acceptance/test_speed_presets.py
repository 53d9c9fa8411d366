"""Speed presets through the real APIs: ``ray-flash-2`` is the default model's fast preset, any dialect's ``speed``
field picks one, and an unknown speed is each dialect's own 4xx naming the field."""

from __future__ import annotations

import httpx
import pytest
from lumaai import LumaAI
from openai import OpenAI
from tests.conftest import ServerProcess, wait_for

from dreamreel.engine.speed import DEFAULT_SPEEDS

TINY_STEPS = 8
"""The tiny model's own steps (``engine/tiny_model.py``): ``quality`` runs them all, ``fast`` its fraction."""
FAST_STEPS = DEFAULT_SPEEDS["fast"].steps_for(TINY_STEPS)


def _steps_run(server: ServerProcess, generation_id: str) -> str:
    """The last ``Denoising step N/N`` the worker logged for a finished generation (fal's status logs)."""
    logs = httpx.get(f"{server.url}/fal-ai/luma-dream-machine/requests/{generation_id}/status",
                     params={"logs": 1}, timeout=30).json()["logs"]
    return [log["message"] for log in logs if log["message"].startswith("Denoising step")][-1]


def test_flash_and_the_speed_field_pick_the_preset_in_every_dialect(shared_server: ServerProcess) -> None:
    luma = LumaAI(auth_token="local", base_url=f"{shared_server.url}/dream-machine/v1", max_retries=0)
    flash = luma.generations.create(prompt="a red ball bouncing", model="ray-flash-2", resolution="540p",
                                    duration="5s", aspect_ratio="16:9")
    asked = luma.generations.create(prompt="a red ball bouncing", model="ray-2", resolution="540p", duration="5s",
                                    aspect_ratio="16:9", extra_body={"speed": "fast"})
    full = luma.generations.create(prompt="a red ball bouncing", model="ray-flash-2", resolution="540p",
                                   duration="5s", aspect_ratio="16:9", extra_body={"speed": "quality"})
    openai = OpenAI(api_key="local", base_url=f"{shared_server.url}/v1", max_retries=0)
    video = openai.videos.create(prompt="a blue cube sliding", model="ray-2", seconds="4", size="640x360",
                                 extra_body={"speed": "fast"})
    fal = httpx.post(f"{shared_server.url}/fal-ai/luma-dream-machine/ray-2-flash",
                     json={"prompt": "a green cone spinning", "resolution": "540p"}, timeout=30)
    assert fal.status_code == 200, fal.text
    aiml = httpx.post(f"{shared_server.url}/v2/video/generations", timeout=30, json={
        "model": "luma/ray-2", "prompt": "a pink star", "resolution": "540p", "speed": "fast"})
    assert aiml.status_code in (200, 201), aiml.text

    ids = {"flash": flash.id, "asked": asked.id, "full": full.id, "openai": video.id,
           "fal": fal.json()["request_id"], "aiml": aiml.json()["id"].split(":")[0]}
    for label, generation_id in ids.items():
        done = wait_for(lambda gid=generation_id: (g := luma.generations.get(gid)).state in ("completed", "failed")
                        and g, timeout=300)
        assert done.state == "completed", (label, done.failure_reason)
    assert FAST_STEPS < TINY_STEPS
    fast = f"Denoising step {FAST_STEPS}/{FAST_STEPS}"
    for label in ("flash", "asked", "openai", "fal", "aiml"):
        assert _steps_run(shared_server, ids[label]) == fast, label
    assert _steps_run(shared_server, ids["full"]) == f"Denoising step {TINY_STEPS}/{TINY_STEPS}"
    assert luma.generations.get(asked.id).request.speed == "fast"  # the request echoed back, as Luma does


@pytest.mark.parametrize(("path", "body", "status", "message_of"), [
    ("/dream-machine/v1/generations", {"prompt": "a", "speed": "turbo"}, 422, lambda b: b["detail"]),
    ("/v1/videos", {"prompt": "a", "speed": "turbo"}, 400, lambda b: b["error"]["message"]),
    ("/v2/video/generations", {"model": "luma/ray-2", "prompt": "a", "speed": "turbo"}, 422, lambda b: b["message"]),
    ("/fal-ai/luma-dream-machine/ray-2", {"prompt": "a", "speed": "turbo"}, 422, lambda b: str(b["detail"])),
])
def test_an_unknown_speed_is_the_dialects_4xx_naming_the_field(shared_server: ServerProcess, path: str, body: dict,
                                                                status: int, message_of) -> None:  # noqa: ANN001
    response = httpx.post(f"{shared_server.url}{path}", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert "speed" in message_of(response.json()), response.text
