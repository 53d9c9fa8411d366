"""OpenAI's remix and edits (``client.videos.remix``, ``client.videos.edit``) through the unmodified ``openai`` SDK
against a live server on the tiny model: a remix is a modify in ``flex_2``, an edit one in ``adhere_3``, of a
completed video or of a video file uploaded with the request.

The source is a 256x144, 1 s video made here first; the uploaded file a 192x144, 1 s MP4 made with PyAV.
Outputs are read back with PyAV; the Luma view of the same generation shows the mode each route chose.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI, omit
from tests.acceptance.imagehost import png_bytes
from tests.acceptance.videohost import mp4_bytes
from tests.conftest import ServerProcess

from dreamreel.media.probe import probe_mp4

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

KEYS = ("key-a", "key-b")
POLL_MS = 100


@pytest.fixture(scope="module")
def api(keyed_edits_server: ServerProcess) -> ServerProcess:
    return keyed_edits_server


def client_for(server: ServerProcess, key: str = KEYS[0]) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client(api: ServerProcess) -> OpenAI:
    return client_for(api)


def video_ref(video_id: str) -> dict:
    """``video={"id": ...}`` as the SDK can send it (its ``extract_files`` refuses a dict where a file may go, so
    the reference goes in ``extra_body``, encoded as ``video[id]``)."""
    return {"video": omit, "extra_body": {"video": {"id": video_id}}}


@pytest.fixture(scope="module")
def made(client: OpenAI) -> dict:
    """The source video, then a remix, an edit by id and an edit of an uploaded file, all queued before any is
    waited for; ``submitted`` holds the answers to the submissions, ``done`` the finished videos."""
    source = client.videos.create_and_poll(prompt="a ball rolls", size="256x144", seconds="1",
                                           poll_interval_ms=POLL_MS)
    assert source.status == "completed", source.error
    submitted = {
        "remix": client.videos.remix(source.id, prompt="the ball turns red"),
        "by_id": client.videos.edit(prompt="make it night", **video_ref(source.id)),
        "by_file": client.videos.edit(prompt="make it snow",
                                      video=("clip.mp4", mp4_bytes(192, 144, seconds=1), "video/mp4")),
    }
    done = {name: client.videos.poll(video.id, poll_interval_ms=POLL_MS) for name, video in submitted.items()}
    return {"source": source, "submitted": submitted, "done": done}


def luma_request(api: ServerProcess, video_id: str) -> dict:
    return httpx.get(f"{api.url}/dream-machine/v1/generations/{video_id}",
                     headers={"Authorization": f"Bearer {KEYS[0]}"}).json()["request"]


@pytest.mark.parametrize("name,mode,size,remixed", [("remix", "flex_2", (960, 540), True),
                                                    ("by_id", "adhere_3", (960, 540), True),
                                                    ("by_file", "adhere_3", (720, 540), False)])
def test_remix_and_edits_deliver_the_sources_aspect_and_length(made: dict, client: OpenAI, api: ServerProcess,
                                                               tmp_path: Path, name: str, mode: str,
                                                               size: tuple[int, int], remixed: bool) -> None:
    """The size and length are known from the source at submission (its short side 144 is nearest 540p: 256x144
    gives 960x540, a 192x144 file 720x540), and the file delivers them."""
    submitted, done = made["submitted"][name], made["done"][name]
    assert (submitted.status, submitted.size, submitted.seconds) == ("queued", f"{size[0]}x{size[1]}", "1")
    assert done.status == "completed", done.error
    assert (done.size, done.seconds, done.progress) == (f"{size[0]}x{size[1]}", "1", 100)
    assert done.remixed_from_video_id == (made["source"].id if remixed else None)
    request = luma_request(api, done.id)
    assert (request["generation_type"], request["mode"]) == ("modify_video", mode)
    path = tmp_path / f"{name}.mp4"
    client.videos.download_content(done.id).write_to_file(path)
    probed = probe_mp4(path)
    assert (probed.codec, probed.width, probed.height, probed.frames) == ("h264", *size, 24)


def test_an_edited_file_is_kept_as_the_callers_upload(made: dict, api: ServerProcess) -> None:
    uploads = httpx.get(f"{api.url}/uploads", headers={"Authorization": f"Bearer {KEYS[0]}"}).json()
    source = luma_request(api, made["done"]["by_file"].id)["media"]["url"]
    assert source.startswith("upload:") and source in {upload["url"] for upload in uploads["uploads"]}


def test_refusals_name_the_parameter(made: dict, client: OpenAI, api: ServerProcess) -> None:
    source_id = made["source"].id
    failed = client.videos.create_and_poll(prompt="x", size="128x128", seconds="1", poll_interval_ms=POLL_MS,
                                           extra_body={"input_reference": {"image_url": "http://127.0.0.1:9/x.png"}})
    assert failed.status == "failed"
    before = httpx.get(f"{api.url}/uploads", headers={"Authorization": f"Bearer {KEYS[0]}"}).json()["count"]
    cases = [
        (lambda: client.videos.remix("nope", prompt="x"), openai.NotFoundError, "video_id", "not found"),
        (lambda: client_for(api, KEYS[1]).videos.remix(source_id, prompt="x"), openai.NotFoundError, "video_id",
         "not found"),
        (lambda: client.videos.remix(failed.id, prompt="x"), openai.ConflictError, "video_id", "completed"),
        (lambda: client.videos.edit(prompt="x", **video_ref(failed.id)), openai.ConflictError, "video",
         "completed"),
        (lambda: client_for(api, KEYS[1]).videos.edit(prompt="x", **video_ref(source_id)), openai.NotFoundError,
         "video", "not found"),
        (lambda: client.videos.edit(prompt="x", video=omit), openai.BadRequestError, "video", "required"),
        (lambda: client.videos.edit(prompt="x", video=("a.mp4", png_bytes((1, 2, 3)), "video/mp4")),
         openai.BadRequestError, "video", "video"),
        (lambda: client.videos.edit(prompt="x", video=("a.mp4", mp4_bytes(64, 64, seconds=11, fps=4), "video/mp4")),
         openai.BadRequestError, "video", "10 s"),
        (lambda: client.videos.edit(prompt="x", video=("a.mp4", mp4_bytes(), "video/mp4"),
                                    extra_body={"video": {"id": source_id}}), openai.BadRequestError, "video",
         "not both"),
    ]
    for call, error, param, words in cases:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.body["param"] == param, caught.value.body
        assert words in caught.value.body["message"], caught.value.body
        assert "media" not in caught.value.body["message"], caught.value.body  # OpenAI's names, not the core's
    after = httpx.get(f"{api.url}/uploads", headers={"Authorization": f"Bearer {KEYS[0]}"}).json()["count"]
    assert after == before, "a refused file is not left behind as an upload"
