"""The AI/ML API v2 dialect, driven by the seed page's own Python example."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import requests
from tests.acceptance.imagehost import ImageHost, jpeg_bytes, png_bytes
from tests.conftest import ServerProcess, wait_for

from dreamreel.media.probe import probe_mp4


def seed_example(base_url: str, api_key: str, data: dict):
    """The AI/ML page's example, verbatim but for ``base_url``, ``api_key`` and the request data.

    (The page's keyframe images live on the public internet, which tests cannot reach: the test serves
    stand-ins from loopback under the same paths.)
    """
    import time

    def generate_video():
        url = f"{base_url}/video/generations"
        headers = {
            "Authorization": f"Bearer {api_key}",
        }
        response = requests.post(url, json=data, headers=headers)
        if response.status_code >= 400:
            print(f"Error: {response.status_code} - {response.text}")
        else:
            response_data = response.json()
            return response_data

    def get_video(gen_id):
        url = f"{base_url}/video/generations"
        params = {
            "generation_id": gen_id,
        }
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json"
        }
        response = requests.get(url, params=params, headers=headers)
        return response.json()

    def main():
        gen_response = generate_video()
        gen_id = gen_response.get("id")
        print("Generation ID:  ", gen_id)
        if gen_id:
            start_time = time.time()
            timeout = 600
            while time.time() - start_time < timeout:
                response_data = get_video(gen_id)
                if response_data is None:
                    print("Error: No response from API")
                    break
                status = response_data.get("status")
                if status in ["queued", "generating"]:
                    print(f"Status: {status}. Checking again in 15 seconds.")
                    time.sleep(15)
                else:
                    print("Processing complete:\n", response_data)
                    return response_data
            print("Timeout reached. Stopping.")
            return None

    return main()


@pytest.fixture(scope="module")
def seed_images():
    """The seed page's two keyframe images, served from loopback under their original paths."""
    host = ImageHost({"/aimlapi/api-docs/main/reference-files/landscape.jpg": jpeg_bytes((40, 120, 60)),
                      "/assets/content/white-fish.png": png_bytes((235, 235, 235), alpha=True)})
    yield host
    host.close()


@pytest.fixture(scope="module")
def aiml_server(tmp_path_factory, tiny_model_dir) -> Iterator[ServerProcess]:
    """The seed test's server: allowed to fetch private (loopback) image URLs, which the default refuses."""
    server = ServerProcess(tmp_path_factory.mktemp("aiml") / "data", tiny_model_dir,
                           extra_env={"DREAMREEL_ALLOW_PRIVATE_URLS": "true"}).start()
    yield server
    server.stop()


def test_seed_example_runs_to_a_completed_video(aiml_server: ServerProcess, seed_images: ImageHost,
                                                tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared_server = aiml_server
    data = {
        "model": "luma/ray-2",
        "prompt": "The camera moves down, dives underwater and moves through a dark, moody world of greenish light "
                  "and drifting plants. Giant white koi fish emerge from the shadows and turn curiously toward the "
                  "camera as it passes, their scales shimmering faintly in the murky depths.",
        "keyframes": {
            "frame0": {"type": "image", "url": seed_images.url("/aimlapi/api-docs/main/reference-files/landscape.jpg")},
            "frame1": {"type": "image", "url": seed_images.url("/assets/content/white-fish.png")},
        },
        "duration": "5",
        "resolution": "540p",
    }
    # The example waits 15 s between polls; its code runs as written, on a clock whose sleeps are capped.
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: real_sleep(min(seconds, 0.2)))
    result = seed_example(f"{shared_server.url}/v2", "my-key", data)
    monkeypatch.undo()
    assert len(seed_images.requests) == 2  # the worker fetched both keyframes
    assert result is not None and result["status"] == "completed", result
    uuid, _, model = result["id"].partition(":")
    assert model == "luma/ray-2" and len(uuid) == 36
    assert result["video"]["duration"] == pytest.approx(5.0)
    assert result["meta"]["usage"]["credits_used"] > 0
    path = tmp_path / "aiml.mp4"
    path.write_bytes(httpx.get(result["video"]["url"]).content)
    info = probe_mp4(path)
    assert (info.width, info.height, info.frames) == (960, 540, 120)

    # The same generation through the Luma view.
    luma = httpx.get(f"{shared_server.url}/dream-machine/v1/generations/{uuid}").json()
    assert luma["state"] == "completed"
    assert luma["assets"]["video"].split("?")[0] == result["video"]["url"].split("?")[0]  # same file; query: expiry

    # The AI/ML id (``<uuid>:luma/ray-2``) extends it, through the same dialect.
    extended = httpx.post(f"{shared_server.url}/v2/video/generations", json={
        "model": "luma/ray-2", "prompt": "the koi swim on", "resolution": "540p",
        "keyframes": {"frame0": {"type": "generation", "id": result["id"]}}})
    assert extended.status_code == 200, extended.text
    done = wait_for(lambda: (r := httpx.get(f"{shared_server.url}/v2/video/generations",
                                            params={"generation_id": extended.json()["id"]}).json())["status"]
                    in ("completed", "error") and r, timeout=180)
    assert done["status"] == "completed" and done["video"]["duration"] == pytest.approx(10.0), done


def test_reference_errors_in_aiml_shape(aiml_server: ServerProcess) -> None:
    url = f"{aiml_server.url}/v2/video/generations"
    missing = httpx.post(url, json={"model": "luma/ray-2", "prompt": "x", "keyframes": {
        "frame0": {"type": "generation", "id": "7c880e75-9892-4238-8464-49cb0c6deabd"}}})
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404
    assert "keyframes.frame0" in missing.json()["message"]
    queued = httpx.post(url, json={"model": "luma/ray-2", "prompt": "slow", "resolution": "4k", "duration": 9}).json()
    pending = httpx.post(url, json={"model": "luma/ray-2", "prompt": "x", "keyframes": {
        "frame1": {"type": "generation", "id": queued["id"]}}})
    assert pending.status_code == 409 and pending.json()["error"] == "Conflict"
    httpx.delete(f"{aiml_server.url}/dream-machine/v1/generations/{queued['id'].split(':')[0]}")
    bad_data = httpx.post(url, json={"model": "luma/ray-2", "prompt": "x", "keyframes": {
        "frame0": {"type": "image", "url": "data:application/pdf;base64,JVBERi0="}}})
    assert bad_data.status_code == 422 and "keyframes.frame0" in bad_data.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": "luma/ray-2"}, "prompt"),
        ({"model": "luma/ray-2", "prompt": "x", "duration": 7}, "duration"),
        ({"model": "luma/ray-2", "prompt": "x", "duration": True}, "duration"),
        ({"model": "luma/ray-2", "prompt": "x", "resolution": "8k"}, "resolution"),
        ({"model": "luma/ray-2", "prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"model": "openai/sora", "prompt": "x"}, "model"),
    ],
)
def test_malformed_bodies_get_aiml_errors(shared_server: ServerProcess, body: dict, field: str) -> None:
    response = httpx.post(f"{shared_server.url}/v2/video/generations", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["statusCode"] == 422 and error["error"] == "Unprocessable Entity"
    assert field in error["message"]


def test_duration_forms_and_defaults(shared_server: ServerProcess) -> None:
    for duration in (5, 9, "5", "9"):
        created = httpx.post(f"{shared_server.url}/v2/video/generations",
                             json={"model": "luma/ray-2", "prompt": "x", "duration": duration})
        assert created.status_code == 200 and created.json()["status"] == "queued"
        gid = created.json()["id"]
        luma = httpx.get(f"{shared_server.url}/dream-machine/v1/generations/{gid.split(':')[0]}").json()
        assert luma["request"]["duration"] == f"{duration}s"
        assert luma["request"]["resolution"] == "1080p"  # the AI/ML page's default
        httpx.delete(f"{shared_server.url}/dream-machine/v1/generations/{gid.split(':')[0]}")


def test_unknown_generation_id(shared_server: ServerProcess) -> None:
    response = httpx.get(f"{shared_server.url}/v2/video/generations",
                         params={"generation_id": "7c880e75-9892-4238-8464-49cb0c6deabd:luma/ray-2"})
    assert response.status_code == 404
    assert response.json()["statusCode"] == 404 and "not found" in response.json()["message"]
    missing = httpx.get(f"{shared_server.url}/v2/video/generations")
    assert missing.status_code == 422 and "generation_id" in missing.json()["message"]
