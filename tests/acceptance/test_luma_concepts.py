"""Camera concepts through the official ``lumaai`` SDK against a live server."""

from __future__ import annotations

import httpx
import lumaai
import pytest
from lumaai import LumaAI
from tests.conftest import ServerProcess, wait_for


def _client(server: ServerProcess) -> LumaAI:
    return LumaAI(auth_token="local-key", base_url=f"{server.url}/dream-machine/v1", max_retries=0)


def test_concepts_and_camera_motions_are_listed(shared_server: ServerProcess) -> None:
    client = _client(shared_server)
    concepts = client.generations.concepts.list()
    assert {"pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "orbit_left",
            "orbit_right", "static", "push_in", "pull_out"} == set(concepts)  # fmt: skip
    # lumaai 1.21.0 has no ``generations.camera_motion`` resource any more; its generic GET still works.
    motions = client.get("/generations/camera_motion/list", cast_to=list[str])
    assert "the camera pans left" in motions and "the camera orbits right" in motions
    assert len(motions) == len(set(motions)) == 9


def test_a_concept_changes_the_prompt_the_model_receives(shared_server: ServerProcess) -> None:
    client = _client(shared_server)
    prompt = "a red ball bounces on green grass"
    created = client.generations.create(
        prompt=prompt, model="ray-2", resolution="540p", concepts=[{"key": "orbit_left"}]
    )
    assert created.request.prompt == prompt  # the stored request is what the caller sent
    assert [c.key for c in created.request.concepts] == ["orbit_left"]
    done = wait_for(lambda: (g := client.generations.get(created.id)).state in ("completed", "failed") and g)
    assert done.state == "completed", done.failure_reason
    assert [c.key for c in done.request.concepts] == ["orbit_left"]

    # The worker logs the exact prompt it handed to the model; fal's status view shows a generation's logs.
    status = httpx.get(
        f"{shared_server.url}/fal-ai/luma-dream-machine/requests/{created.id}/status", params={"logs": 1}
    ).json()
    model_prompts = [log["message"] for log in status["logs"] if log["message"].startswith("Model prompt: ")]
    assert model_prompts == [f"Model prompt: {prompt}, the camera orbits left"]

    plain = client.generations.create(prompt=prompt, model="ray-2", resolution="540p")
    wait_for(lambda: client.generations.get(plain.id).state == "completed")
    status = httpx.get(
        f"{shared_server.url}/fal-ai/luma-dream-machine/requests/{plain.id}/status", params={"logs": 1}
    ).json()
    assert [log["message"] for log in status["logs"] if log["message"].startswith("Model prompt: ")] == [
        f"Model prompt: {prompt}"
    ]


@pytest.mark.parametrize(
    ("concepts", "named"),
    [
        ([{"key": "dolly_zoom"}], ["dolly_zoom"]),
        ([{"key": "pan_sideways"}], ["pan_sideways"]),
        ([{"key": "pan_left"}, {"key": "zoom_in"}], ["pan_left", "zoom_in"]),
    ],
)
def test_unsupported_concepts_are_422_naming_them(
    shared_server: ServerProcess, concepts: list[dict], named: list[str]
) -> None:
    client = _client(shared_server)
    before = client.generations.list(limit=1000).count
    with pytest.raises(lumaai.UnprocessableEntityError) as caught:
        client.generations.create(prompt="a blue square on sand", model="ray-2", concepts=concepts)
    detail = caught.value.body["detail"]
    for key in named:
        assert key in detail
    assert client.generations.list(limit=1000).count == before  # nothing was queued
