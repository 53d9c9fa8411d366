"""Video edits (modify, reframe) and the audio refusal through the unmodified ``lumaai`` SDK, on the tiny model.

Sources are a 256x144, 1 s MP4 served from loopback (the server allows private URLs so its worker may fetch
it), an earlier generation given as its own signed file URL, and hostile URLs (a web page, a 200 MB body, a
60 s clip) that can only fail once fetched. Every edit is submitted before any is waited for, so the one
worker is never idle while a test polls. Outputs are read back with PyAV.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import lumaai
import numpy as np
import pytest
from lumaai import LumaAI
from lumaai.types.generation import Generation, RequestModifyVideoRequest, RequestReframeVideoRequest
from tests.acceptance.imagehost import png_bytes
from tests.acceptance.videohost import VideoHost, mp4_bytes
from tests.conftest import ServerProcess

from dreamreel.media.probe import probe_mp4
from dreamreel.media.quality import psnr

KEYS = ("key-a", "key-b")
WINDOW_Y = 100
"""Where the reframe puts its 960x540 source in the 540x960 canvas: 540 wide (so 304 high) from (0, 100)."""


@pytest.fixture(scope="module")
def videos() -> Iterator[VideoHost]:
    host = VideoHost({"/clip.mp4": mp4_bytes(), "/long.mp4": mp4_bytes(64, 64, seconds=60, fps=4),
                      "/page.mp4": b"<html><body>this is a web page, not a video</body></html>"})
    yield host
    host.close()


@pytest.fixture(scope="module")
def api(keyed_edits_server: ServerProcess) -> ServerProcess:
    return keyed_edits_server


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    """No private URLs and no workers: only what submission checks happens here, and nothing leaves the queue."""
    server = ServerProcess(tmp_path_factory.mktemp("edits-strict") / "data", tiny_model_dir, workers=0,
                           extra_env={"DREAMREEL_ALLOW_PRIVATE_URLS": "false"}).start()
    yield server
    server.stop()


def client(server: ServerProcess, key: str = KEYS[0]) -> LumaAI:
    return LumaAI(auth_token=key, base_url=f"{server.url}/dream-machine/v1", max_retries=0)


def finish(luma: LumaAI, generation_id: str, timeout: float = 120) -> Generation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = luma.generations.get(generation_id)
        if generation.state in ("completed", "failed"):
            return generation
        time.sleep(0.1)
    raise AssertionError(f"{generation_id} did not finish")


def modify(luma: LumaAI, url: str, **kwargs) -> Generation:
    return luma.generations.video.modify(generation_type="modify_video", media={"url": url},
                                         mode=kwargs.pop("mode", "adhere_1"), model=kwargs.pop("model", "ray-2"),
                                         **kwargs)


@pytest.fixture(scope="module")
def made(api: ServerProcess, videos: VideoHost) -> dict[str, Generation]:
    """Every edit the module waits for: the ones that fail once fetched first (they are quick; the last only
    once the source's size is known), then a modify of the loopback clip, then a reframe of that modify given
    as its own signed file URL."""
    luma = client(api)
    created = {name: modify(luma, videos.url(path)) for name, path in (
        ("page", "/page.mp4"), ("huge", "/huge.mp4"), ("long", "/long.mp4"))}
    created["box"] = luma.generations.video.reframe(generation_type="reframe_video", aspect_ratio="1:1",
                                                    model="ray-2", media={"url": videos.url("/clip.mp4")},
                                                    x_start=0, x_end=2000)  # wider than the 540x540 canvas
    created["modify"] = modify(luma, videos.url("/clip.mp4"), prompt="the ball turns red", mode="flex_2")
    done = {name: finish(luma, generation.id) for name, generation in created.items()}
    assert done["modify"].state == "completed", done["modify"].failure_reason
    reframe = luma.generations.video.reframe(generation_type="reframe_video", aspect_ratio="9:16", model="ray-2",
                                             media={"url": done["modify"].assets.video}, prompt="more sky",
                                             grid_position_x=0, grid_position_y=WINDOW_Y, resized_width=540)
    done["reframe"] = finish(luma, reframe.id)
    return done


def download(url: str, path: Path) -> Path:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    path.write_bytes(response.content)
    return path


def test_modify_a_url_keeps_aspect_and_length_at_the_resolution_class(made: dict, videos: VideoHost,
                                                                      tmp_path: Path) -> None:
    """A 256x144 source (short side nearest 540p) gives 960x540, its 24 frames at 24 fps."""
    done = made["modify"]
    assert isinstance(done.request, RequestModifyVideoRequest), done.request
    assert (done.request.mode, done.request.media.url, done.request.prompt) == (
        "flex_2", videos.url("/clip.mp4"), "the ball turns red")
    assert "/clip.mp4" in videos.requests  # the worker fetched it
    probed = probe_mp4(download(done.assets.video, tmp_path / "modify.mp4"))
    assert (probed.codec, probed.width, probed.height, probed.fps, probed.frames) == ("h264", 960, 540, 24.0, 24)


def frames_of(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24", width=size[0], height=size[1]) if size else
                         frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(np.float32)


def test_reframe_of_this_servers_file_url_keeps_the_source_in_its_box(made: dict, tmp_path: Path) -> None:
    """The source's own pixels fill the box the placement fields name (resized_width, grid_position_x/y)."""
    done = made["reframe"]
    assert done.state == "completed", done.failure_reason
    assert isinstance(done.request, RequestReframeVideoRequest), done.request
    assert (done.request.media.url, done.request.aspect_ratio) == (f"generation:{made['modify'].id}", "9:16")
    assert (done.request.grid_position_y, done.request.resized_width) == (WINDOW_Y, 540)
    path = download(done.assets.video, tmp_path / "reframe.mp4")
    probed = probe_mp4(path)
    assert (probed.width, probed.height, probed.frames) == (540, 960, 24)
    source = frames_of(download(made["modify"].assets.video, tmp_path / "source.mp4"), (540, 304))
    box = frames_of(path)[:, WINDOW_Y:WINDOW_Y + 304]
    # Measured 29.8 dB: the tiny model's clip is noise-like, and it went through two x264 encodes and two
    # scalings. The same box against the source played backwards reads 15.9 dB.
    assert psnr(box, source) >= 27.0, psnr(box, source)
    assert psnr(box, source) > psnr(box, source[::-1]) + 8, (psnr(box, source), psnr(box, source[::-1]))


def test_listing_parses_every_request_kind(made: dict, api: ServerProcess) -> None:
    kinds = {type(g.request) for g in client(api).generations.list(limit=100).generations}
    assert {RequestModifyVideoRequest, RequestReframeVideoRequest} <= kinds


@pytest.mark.parametrize("name,reason", [("page", "video"), ("huge", "too_large"),
                                         ("long", "10 s"), ("box", "does not fit")])
def test_a_source_that_is_only_bad_once_fetched_fails_with_a_reason(made: dict, name: str, reason: str) -> None:
    done = made[name]
    assert done.state == "failed" and not (done.assets and done.assets.video), done
    assert done.failure_reason and reason in done.failure_reason, done.failure_reason


def test_other_views_name_the_source_in_their_own_words(made: dict, api: ServerProcess) -> None:
    """The failed edit's reason says ``media.url`` here, ``video`` in the OpenAI view (with the ``input`` code)."""
    assert made["page"].failure_reason.startswith("media.url: "), made["page"].failure_reason
    video = httpx.get(f"{api.url}/v1/videos/{made['page'].id}", headers={"Authorization": f"Bearer {KEYS[0]}"})
    assert video.json()["status"] == "failed", video.text
    assert video.json()["error"]["code"] == "input" and video.json()["error"]["message"].startswith("video: ")


def test_submission_refuses_what_it_can_see(api: ServerProcess, made: dict, videos: VideoHost) -> None:
    luma, other = client(api), client(api, KEYS[1])
    cases = [
        (lambda: modify(luma, videos.url("/clip.mp4"), mode="flex_9"), lumaai.UnprocessableEntityError, "mode"),
        (lambda: modify(luma, "ftp://example.com/clip.mp4"), lumaai.UnprocessableEntityError, "media.url"),
        (lambda: modify(luma, "generation:00000000-0000-0000-0000-000000000000"), lumaai.NotFoundError,
         "media.url"),
        (lambda: modify(other, f"generation:{made['modify'].id}"), lumaai.NotFoundError, "not found"),
        (lambda: modify(other, made["modify"].assets.video), lumaai.NotFoundError, "not found"),
        (lambda: modify(luma, made["modify"].assets.image), lumaai.UnprocessableEntityError, "not a generation's"),
        (lambda: modify(luma, f"generation:{made['page'].id}"), lumaai.ConflictError, "completed"),
        (lambda: luma.generations.video.reframe(generation_type="reframe_video", aspect_ratio="1:1", model="ray-2",
                                                media={"url": f"generation:{made['modify'].id}"}, x_start=0,
                                                x_end=2000),
         lumaai.UnprocessableEntityError, "does not fit"),
        (lambda: modify(luma, videos.url("/clip.mp4"), extra_body={"resolution": "8k"}),
         lumaai.UnprocessableEntityError, "resolution"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as caught:
            call()
        assert words in caught.value.body["detail"], caught.value.body
    missing = httpx.post(f"{api.url}/dream-machine/v1/generations/video/modify", headers={
        "Authorization": f"Bearer {KEYS[0]}"}, json={"generation_type": "modify_video", "mode": "adhere_1",
                                                   "model": "ray-2"})
    assert missing.status_code == 422 and "media" in missing.json()["detail"], missing.text


def test_an_upload_that_is_not_a_video_is_refused(api: ServerProcess) -> None:
    uploaded = httpx.post(f"{api.url}/uploads", content=png_bytes((200, 40, 40)),
                          headers={"Authorization": f"Bearer {KEYS[0]}"})
    assert uploaded.status_code == 201, uploaded.text
    with pytest.raises(lumaai.UnprocessableEntityError) as caught:
        modify(client(api), uploaded.json()["url"])
    assert "not a video" in caught.value.body["detail"], caught.value.body


def test_a_generation_longer_than_the_models_modify_limit_is_refused(api: ServerProcess) -> None:
    """Modify takes 10 s on ray-2 and 15 s on ray-flash-2 (Luma's limits); an 11 s clip is refused by one only."""
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    made = httpx.post(f"{api.url}/v1/videos", headers=headers,
                      json={"prompt": "a long one", "size": "128x128", "seconds": 11}, timeout=30)
    assert made.status_code == 200, made.text
    luma = client(api)
    source = finish(luma, made.json()["id"])
    assert source.state == "completed", source.failure_reason
    with pytest.raises(lumaai.UnprocessableEntityError) as caught:
        modify(luma, f"generation:{source.id}", model="ray-2")
    assert "11.0 s" in caught.value.body["detail"] and "10 s" in caught.value.body["detail"], caught.value.body
    flash = modify(luma, f"generation:{source.id}", model="ray-flash-2")
    assert flash.state == "queued"
    luma.generations.delete(flash.id)


def test_private_and_own_urls_on_a_strict_server(strict: ServerProcess) -> None:
    """A loopback literal is refused at submission; this server's own file URL is not fetched at all but read as
    the generation it names, so a queued one is a 409 rather than an address refusal."""
    luma = client(strict)
    for url in ("http://127.0.0.1:9/clip.mp4", "http://[::1]/clip.mp4", "http://169.254.169.254/latest/"):
        with pytest.raises(lumaai.UnprocessableEntityError) as caught:
            modify(luma, url)
        assert "media.url" in caught.value.body["detail"], caught.value.body
    queued = luma.generations.create(model="ray-2", prompt="never runs", resolution="540p")
    own = f"{strict.url}/files/generations/{queued.id}/video.mp4?exp=1&sig=x"
    with pytest.raises(lumaai.ConflictError) as caught:
        modify(luma, own)
    assert f"generation {queued.id} is queued" in caught.value.body["detail"], caught.value.body


def test_audio_is_refused_clearly_for_the_callers_generation_only(api: ServerProcess, made: dict) -> None:
    luma = client(api)
    with pytest.raises(lumaai.UnprocessableEntityError) as caught:
        luma.generations.audio(made["modify"].id, generation_type="add_audio", prompt="birdsong")
    assert "no audio model" in caught.value.body["detail"], caught.value.body
    for call in (lambda: luma.generations.audio("00000000-0000-0000-0000-000000000000", prompt="x"),
                 lambda: client(api, KEYS[1]).generations.audio(made["modify"].id, prompt="x")):
        with pytest.raises(lumaai.NotFoundError):
            call()
