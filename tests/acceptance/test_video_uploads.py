"""Video uploads on a real ``dreamreel serve``: ``POST /uploads`` takes an MP4, MOV or WebM (judged by its bytes),
answers its facts, and refuses what no edit can use (corrupt, over a cap) without keeping it; the route's body
cap is ``max_video_bytes`` for a video and stays ``max_body_bytes`` for an image. ``upload_video_facts`` (what
the service asks at submission) reads a kept upload back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from tests.conftest import ServerProcess
from tests.unit.test_video_source import clip_bytes

from dreamreel.api.uploads import upload_video_facts
from dreamreel.config import DEFAULT_MODEL_DIR
from dreamreel.core.edits import SourceFacts
from dreamreel.core.errors import InvalidRequest, NotFound
from dreamreel.files import LocalFiles

KEY, QUOTA_KEY = "key-video", "key-small-quota"
MAX_BODY = 64 * 1024
MAX_VIDEO = 256 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("video-uploads") / "data", DEFAULT_MODEL_DIR, workers=0, extra_env={
        "DREAMREEL_API_KEYS": f'["{KEY}"]',
        "DREAMREEL_MAX_BODY_BYTES": str(MAX_BODY),
        "DREAMREEL_MAX_VIDEO_BYTES": str(MAX_VIDEO),
    }).start()
    yield proc
    proc.stop()


def _post(server: ServerProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/uploads", content=body, headers={"Authorization": f"Bearer {KEY}", **headers},
                      timeout=30)


def _uploads(server: ServerProcess) -> list[str]:
    listed = httpx.get(f"{server.url}/uploads", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
    return [item["id"] for item in listed["uploads"]]


def _padded(mp4: bytes, size: int) -> bytes:
    """``mp4`` grown to ``size`` bytes by a trailing ``free`` box (valid ISO BMFF: players skip it)."""
    pad = size - len(mp4)
    return mp4 + pad.to_bytes(4, "big") + b"free" + b"\0" * (pad - 8)


def _png(width: int, height: int, noisy: bool = False) -> bytes:
    image = Image.frombytes("RGB", (width, height), bytes(range(256)) * (width * height * 3 // 256 + 1)) if noisy \
        else Image.new("RGB", (width, height), (20, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "libx264"), ("mov", "libx264"), ("webm", "libvpx-vp9")])
def test_a_video_upload_answers_its_facts(server: ServerProcess, fmt: str, codec: str) -> None:
    video = clip_bytes(fmt, codec, width=96, height=64, frames=36)
    response = _post(server, video, **{"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"id": body["id"], "url": f"upload:{body['id']}", "kind": "video", "width": 96, "height": 64,
                    "duration_s": 1.5, "fps": 24.0, "frames": 36}
    assert body["id"] in _uploads(server)
    assert (server.data_dir / "files" / "uploads").rglob(body["id"])  # kept as sent
    assert next((server.data_dir / "files" / "uploads").rglob(body["id"])).read_bytes() == video


def test_an_image_upload_is_still_an_image(server: ServerProcess) -> None:
    response = _post(server, _png(8, 6), **{"Content-Type": "video/mp4"})  # the header is not believed
    assert response.status_code == 201, response.text
    assert response.json() == {"id": response.json()["id"], "url": f"upload:{response.json()['id']}",
                               "kind": "image", "width": 8, "height": 6}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(range(256)) * 8, "not a usable video: the MP4 file"),
        (clip_bytes()[:2000], "not a usable video"),
        (clip_bytes("mov", "mjpeg", pix_fmt="yuvj420p", frames=2), "coded as mjpeg"),
        (b"GIF87a but not really" * 10, "not a usable image (PNG, JPEG, WEBP, GIF, BMP) or video (MP4, MOV, WebM)"),
    ],
    ids=["garbage-after-ftyp", "truncated", "mjpeg", "neither"],
)
def test_an_unusable_file_is_a_422_and_is_not_kept(server: ServerProcess, body: bytes, detail: str) -> None:
    before = _uploads(server)
    response = _post(server, body)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert _uploads(server) == before


def test_the_video_body_cap_is_max_video_bytes_and_images_keep_max_body_bytes(server: ServerProcess) -> None:
    video = clip_bytes(width=32, height=32, frames=4)
    over_body_cap = _post(server, _padded(video, MAX_BODY * 2))  # a video past max_body_bytes: its own cap
    assert over_body_cap.status_code == 201, over_body_cap.text
    assert over_body_cap.json()["kind"] == "video"

    too_big = _post(server, _padded(video, MAX_VIDEO + 1))
    assert too_big.status_code == 413, too_big.text
    assert f"over the {MAX_VIDEO}-byte limit (max_video_bytes)" in too_big.json()["detail"]

    way_too_big = _post(server, _padded(video, MAX_VIDEO * 8))  # past the route's body cap: refused unread
    assert way_too_big.status_code == 413, way_too_big.text

    big_image = _png(160, 160, noisy=True)
    assert MAX_BODY < len(big_image) < MAX_VIDEO
    refused = _post(server, big_image)
    assert refused.status_code == 413 and "(max_body_bytes)" in refused.json()["detail"]


def test_an_idempotent_video_upload_gets_the_video_body_cap(server: ServerProcess) -> None:
    """With an ``Idempotency-Key`` the admission middleware reads the body first: under the same cap."""
    video = _padded(clip_bytes(width=32, height=32, frames=4), MAX_BODY * 2)
    first = _post(server, video, **{"Idempotency-Key": "video-once"})
    assert first.status_code == 201, first.text
    again = _post(server, video, **{"Idempotency-Key": "video-once"})
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()


@pytest.mark.parametrize(
    ("clip", "detail"),
    [
        ({"width": 4112, "height": 16, "frames": 1}, "the video is 4112x16; the largest accepted is 4k"),
        ({"codec": "mpeg4", "width": 16, "height": 16, "frames": 32, "fps": 1}, "video too long: 32.0 s; edits"),
    ],
    ids=["over-4k", "over-30s"],
)
def test_a_video_over_a_cap_is_a_413(server: ServerProcess, clip: dict, detail: str) -> None:
    response = _post(server, clip_bytes(**clip))
    assert response.status_code == 413, response.text
    assert detail in response.json()["detail"]


# --- what the service asks at submission ----------------------------------------------------------------------


def test_upload_video_facts_reads_a_kept_upload_back(tmp_path: Path) -> None:
    files = LocalFiles(tmp_path)
    facts = upload_video_facts(files)
    video = files.save_upload("owner", clip_bytes(width=48, height=32, frames=12))
    image = files.save_upload("owner", _png(4, 4))
    broken = files.save_upload("owner", b"\x1a\x45\xdf\xa3" + b"\x00" * 100)  # kept by a route that checked less
    assert facts("owner", video) == SourceFacts(width=48, height=32, fps=24.0, frames=12)
    assert facts("owner", image) is None
    with pytest.raises(InvalidRequest, match="is not a usable video") as info:
        facts("owner", broken)
    assert info.value.field == "media"
    with pytest.raises(NotFound):
        facts("someone-else", video)
