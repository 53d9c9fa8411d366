"""OpenAI's ``/v1/videos`` through the unmodified ``openai`` SDK against a live server on the tiny model.

One server (two keys) for the module; generations are small (a few hundred pixels, a few seconds) where the
size is not what is tested, and submitted together before any is waited for, so the worker is never idle
while a test polls. Every MP4 is read back with PyAV; thumbnails and sprite sheets with Pillow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI, omit
from PIL import Image
from tests.acceptance.imagehost import ImageHost, png_bytes
from tests.conftest import ServerProcess

from dreamreel.media.probe import probe_mp4

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

KEYS = ("key-a", "key-b")
POLL_MS = 200


@pytest.fixture(scope="module")
def images() -> Iterator[ImageHost]:
    host = ImageHost({"/start.png": png_bytes((30, 60, 200))})
    yield host
    host.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("openai") / "data", tiny_model_dir,
                           extra_env={"DREAMREEL_API_KEYS": '["key-a", "key-b"]'}).start()
    yield server
    server.stop()


def client_for(server: ServerProcess, key: str = KEYS[0]) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client(api: ServerProcess) -> OpenAI:
    return client_for(api)


@pytest.fixture(scope="module")
def made(client: OpenAI, api: ServerProcess, images: ImageHost) -> dict[str, openai.types.Video]:
    """Every generation the module waits for, submitted up front in one queue."""
    luma = httpx.post(f"{api.url}/dream-machine/v1/generations", headers={"Authorization": f"Bearer {KEYS[0]}"},
                      json={"prompt": "a red ball", "aspect_ratio": "4:3", "resolution": "540p"}, timeout=30)
    assert luma.status_code == 201, luma.text
    videos = {
        "openai_size": client.videos.create(prompt="a blue cube", size="1280x720", seconds="4"),
        "upload": client.videos.create(prompt="it moves", size="256x256", seconds="1",
                                       input_reference=("start.png", png_bytes((200, 40, 40)), "image/png")),
        "url": client.videos.create(prompt="it moves", size="256x256", seconds="1", model="ray-2",
                                    extra_body={"input_reference": {"image_url": images.url("/start.png")}}),
    }
    # Last in the queue, so waiting for it waits for the rest: the SDK's create_and_poll.
    videos["exact"] = client.videos.create_and_poll(prompt="a red ball rolls", model="sora-2", size="320x240",
                                                    seconds="3", poll_interval_ms=POLL_MS)
    videos = {name: client.videos.poll(video.id, poll_interval_ms=POLL_MS) for name, video in videos.items()}
    videos["luma"] = client.videos.poll(luma.json()["id"], poll_interval_ms=POLL_MS)
    return videos


def video_ref(video_id: str) -> dict:
    """``video={"id": ...}`` as the SDK can send it: 3.51's ``extract_files`` refuses a dict where a file may go
    (a client-side RuntimeError), so the reference goes in ``extra_body``, which it encodes as ``video[id]``."""
    return {"video": omit, "extra_body": {"video": {"id": video_id}}}


def download(client: OpenAI, video_id: str, path: Path, variant: str = "video") -> Path:
    client.videos.download_content(video_id, variant=variant).write_to_file(path)
    return path


def test_create_and_poll_gives_the_video_object(made: dict) -> None:
    video = made["exact"]
    assert (video.object, video.status, video.progress, video.seconds, video.size) == (
        "video", "completed", 100, "3", "320x240")
    assert video.model == "ray-2" and video.prompt == "a red ball rolls" and video.error is None
    assert video.completed_at is not None and video.completed_at >= video.created_at
    assert video.remixed_from_video_id is None and video.expires_at is None  # no retention configured


@pytest.mark.parametrize("name,size,frames", [("exact", (320, 240), 72), ("openai_size", (1280, 720), 96),
                                              ("upload", (256, 256), 24), ("url", (256, 256), 24)])
def test_sizes_lengths_and_image_inputs(made: dict, client: OpenAI, tmp_path: Path, name: str,
                                        size: tuple[int, int], frames: int) -> None:
    """OpenAI's 1280x720 x 4 s, a size and length OpenAI does not sell (320x240, 3 s), and image-to-video from
    a multipart upload and from an ``image_url``."""
    video = made[name]
    assert video.status == "completed", video.error
    assert (video.size, video.seconds) == (f"{size[0]}x{size[1]}", str(frames // 24))
    probed = probe_mp4(download(client, video.id, tmp_path / "v.mp4"))
    assert (probed.codec, probed.fps, (probed.width, probed.height), probed.frames) == ("h264", 24, size, frames)


def test_thumbnail_and_spritesheet_are_jpegs(made: dict, client: OpenAI, tmp_path: Path) -> None:
    video = made["exact"]
    thumbnail = Image.open(download(client, video.id, tmp_path / "t.jpg", "thumbnail"))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (320, 240))
    sheet = Image.open(download(client, video.id, tmp_path / "s.jpg", "spritesheet"))
    assert (sheet.format, sheet.size) == ("JPEG", (3 * 160, 120)), "one 160x120 tile per second, in one row"
    sheet.load()


def test_list_pages_with_after_in_both_orders(made: dict, client: OpenAI, api: ServerProcess) -> None:
    luma = httpx.get(f"{api.url}/dream-machine/v1/generations", params={"limit": 1000},
                     headers={"Authorization": f"Bearer {KEYS[0]}"}).json()
    newest_first = [g["id"] for g in luma["generations"]]
    first = client.videos.list(limit=2)
    assert [v.id for v in first.data] == newest_first[:2] and first.has_more and first.last_id == newest_first[1]
    assert [v.id for v in client.videos.list(limit=2, after=first.last_id).data] == newest_first[2:4]
    assert [v.id for v in client.videos.list(limit=2)] == newest_first  # the SDK pages on with after=last_id
    assert [v.id for v in client.videos.list(limit=3, order="asc")] == newest_first[::-1]
    assert client_for(api, KEYS[1]).videos.list().data == [], "keys see only their own videos"


def test_v1_and_luma_see_and_extend_each_other(made: dict, client: OpenAI, api: ServerProcess,
                                               tmp_path: Path) -> None:
    """A /v1 video is a Luma generation and a Luma extension's frame0; a Luma generation extends through /v1,
    and the extension's ``seconds`` is the stitched total."""
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    exact = made["exact"]
    seen = httpx.get(f"{api.url}/dream-machine/v1/generations/{exact.id}", headers=headers).json()
    assert (seen["state"], seen["request"]["duration"]) == ("completed", "3s")
    luma_ext = httpx.post(f"{api.url}/dream-machine/v1/generations", headers=headers, json={
        "prompt": "on and on", "aspect_ratio": "4:3", "resolution": "540p",
        "keyframes": {"frame0": {"type": "generation", "id": exact.id}}}, timeout=30)
    assert luma_ext.status_code == 201, luma_ext.text

    source = made["luma"]
    assert (source.status, source.seconds, source.size) == ("completed", "5", "720x540")
    extension = client.videos.extend(prompt="and further", seconds="1", **video_ref(source.id))
    assert (extension.status, extension.seconds, extension.size) == ("queued", "6", "720x540")
    extension = client.videos.poll(extension.id, poll_interval_ms=POLL_MS)
    assert (extension.status, extension.seconds) == ("completed", "6")
    probed = probe_mp4(download(client, extension.id, tmp_path / "ext.mp4"))
    assert ((probed.width, probed.height), probed.frames) == ((720, 540), 6 * 24)
    luma_done = client.videos.poll(luma_ext.json()["id"], poll_interval_ms=POLL_MS)
    assert (luma_done.status, luma_done.seconds) == ("completed", "8")


def test_delete_then_retrieve_is_not_found(client: OpenAI) -> None:
    video = client.videos.create(prompt="short lived", size="128x128", seconds="1")
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.retrieve(video.id)
    assert caught.value.body["param"] == "video_id" and caught.value.body["type"] == "invalid_request_error"


def test_extend_takes_a_generation_not_a_file(client: OpenAI) -> None:
    """Remix and edits are video edits (tests/acceptance/test_edits_openai.py); an extension's source is a
    generation of this server, so a file is a 400 naming ``video``."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.extend(prompt="x", seconds="4", video=("clip.mp4", b"\0" * 64, "video/mp4"))
    assert caught.value.body["param"] == "video", caught.value.body


@pytest.mark.parametrize("kwargs,param", [
    ({"size": "big"}, "size"),
    ({"size": "1280*720"}, "size"),
    ({"size": "100x100"}, "size"),
    ({"size": "3842x960"}, "size"),
    ({"size": "1281x720"}, "size"),
    ({"size": "2048x256"}, "size"),
    ({"seconds": "0"}, "seconds"),
    ({"seconds": "21"}, "seconds"),
    ({"seconds": "4.5"}, "seconds"),
    ({"model": "sora-3"}, "model"),
    ({"input_reference": ("a.png", b"<html>not an image</html>", "image/png")}, "input_reference"),
    ({"extra_body": {"input_reference": {"image_url": "ftp://example.com/a.png"}}}, "input_reference"),
    ({"extra_body": {"input_reference": {"file_id": "file-abc"}}}, "input_reference"),
    ({"extra_body": {"input_reference": {"image_url": "http://a/b.png", "file_id": "c"}}}, "input_reference"),
    ({"extra_body": {"fps": 30}}, "fps"),
])
def test_bad_input_is_a_4xx_naming_the_field(client: OpenAI, kwargs: dict, param: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.videos.create(prompt="x", **{"size": "256x256", "seconds": "1", **kwargs})
    assert 400 <= caught.value.status_code < 500, caught.value.body
    assert caught.value.body["param"] == param, caught.value.body
    if param == "model":
        assert "ray-2" in caught.value.body["message"] and "sora-2" in caught.value.body["message"]


def test_unknown_ids_are_not_found(client: OpenAI, api: ServerProcess, made: dict) -> None:
    for call, param in ((lambda: client.videos.retrieve("nope"), "video_id"),
                        (lambda: client.videos.download_content("nope"), "video_id"),
                        (lambda: client.videos.delete("nope"), "video_id"),
                        (lambda: client.videos.extend(prompt="x", seconds="4", **video_ref("nope")), "video"),
                        (lambda: client.videos.list(after="nope"), "after"),
                        (lambda: client_for(api, KEYS[1]).videos.retrieve(made["exact"].id), "video_id")):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body["param"] == param, caught.value.body
    with pytest.raises(openai.AuthenticationError):
        client_for(api, "wrong-key").videos.list()


def test_json_bodies_models_and_an_idempotent_retry(api: ServerProcess, client: OpenAI) -> None:
    headers = {"Authorization": f"Bearer {KEYS[0]}", "Idempotency-Key": "openai-retry-1"}
    body = {"prompt": "json body", "size": "128x128", "seconds": 1, "input_reference": None}
    first = httpx.post(f"{api.url}/v1/videos", json=body, headers=headers, timeout=30)
    again = httpx.post(f"{api.url}/v1/videos", json=body, headers=headers, timeout=30)
    assert first.status_code == 200 and first.json()["status"] == "queued", first.text
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    client.videos.delete(first.json()["id"])
    models = {model.id for model in client.models.list()}
    assert models == {"ray-2", "ray-flash-2"}
    assert client.models.retrieve("sora-2").id == "sora-2"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("sora-3")


def test_an_sdk_retry_of_a_multipart_create_with_an_idempotency_key_makes_one_video(client: OpenAI) -> None:
    """A retried form carries a new random boundary: admission compares the fields, not the boundary."""
    kwargs = dict(prompt="retried form", size="128x128", seconds="1",
                  input_reference=("start.png", png_bytes((10, 200, 10)), "image/png"),
                  extra_headers={"Idempotency-Key": "multipart-retry-1"})
    first, again = client.videos.create(**kwargs), client.videos.create(**kwargs)
    assert again.id == first.id
    client.videos.delete(first.id)
