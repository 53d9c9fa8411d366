"""``/uploads`` on a real ``dreamreel serve`` with two keys: decoding is bounded (a small file declaring a huge
image is refused from its header, parallel uploads cannot multiply the API's memory), each key holds at most
its quota of uploads, and uploads are listed and deleted by their owner only."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.conftest import ServerProcess

KEY_A, KEY_B = "key-a", "key-b"
MAX_COUNT = 8
MAX_BYTES = 500_000
RSS_GROWTH_LIMIT = 300 * 1024 * 1024
"""Eight parallel decodes of the largest accepted image (16.8 MP, 50-67 MB each) would take ~500 MB at once;
two at a time (``image_decode_concurrency``) stay well under this."""
RSS_KEPT_LIMIT = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("uploads") / "data", tiny_model_dir, workers=0, extra_env={
        "DREAMREEL_API_KEYS": f'["{KEY_A}", "{KEY_B}"]',
        "DREAMREEL_UPLOAD_MAX_COUNT": str(MAX_COUNT),
        "DREAMREEL_UPLOAD_MAX_BYTES": str(MAX_BYTES),
    }).start()
    yield proc
    proc.stop()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _png_of_zeros(width: int, height: int) -> bytes:
    """A valid, black RGB PNG: ~114 KB for 6500x6000, which decodes to 117 MB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * 3)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _upload(server: ServerProcess, key: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/uploads", content=data, headers=_auth(key), timeout=60)


def test_huge_images_are_refused_from_the_header_and_memory_stays_bounded(keyed_server: ServerProcess) -> None:
    assert keyed_server.proc is not None
    bomb = _png_of_zeros(6500, 6000)
    assert len(bomb) < 128 * 1024
    before = _memory_kb(keyed_server.proc.pid)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _upload(keyed_server, KEY_A, bomb), range(8)))

    for response in responses:
        assert response.status_code == 413, response.text
        assert "6500x6000" in response.json()["detail"]
        assert "16777216-pixel limit" in response.json()["detail"]
    peak_growth = (_memory_kb(keyed_server.proc.pid)["VmHWM"] - before["VmRSS"]) * 1024
    assert peak_growth < RSS_GROWTH_LIMIT, f"API process grew by {peak_growth / 2**20:.0f} MB"
    assert httpx.get(f"{keyed_server.url}/uploads", headers=_auth(KEY_A)).json()["count"] == 0

    # Images at the limit are decoded, two at a time, and the memory is given back afterwards.
    at_limit = _png_of_zeros(4096, 4096)
    before = _memory_kb(keyed_server.proc.pid)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _upload(keyed_server, KEY_B, at_limit), range(8)))
    assert [response.status_code for response in responses] == [201] * 8
    after = _memory_kb(keyed_server.proc.pid)
    assert (after["VmHWM"] - before["VmRSS"]) * 1024 < RSS_GROWTH_LIMIT, f"peak {after['VmHWM'] // 1024} MB"
    assert (after["VmRSS"] - before["VmRSS"]) * 1024 < RSS_KEPT_LIMIT, f"kept {after['VmRSS'] // 1024} MB"
    for response in responses:
        deleted = httpx.delete(f"{keyed_server.url}/uploads/{response.json()['id']}", headers=_auth(KEY_B))
        assert deleted.status_code == 204

    # An ordinary photo still goes through, reported upright (EXIF "rotate 90" turns 64x48 into 48x64).
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = _encode(Image.new("RGB", (64, 48), (200, 30, 30)), "JPEG", exif=exif)
    response = _upload(keyed_server, KEY_A, photo)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (48, 64)
    assert body["url"] == f"upload:{body['id']}"
    assert httpx.delete(f"{keyed_server.url}/uploads/{body['id']}", headers=_auth(KEY_A)).status_code == 204


def test_each_key_has_an_upload_quota_and_only_the_owner_can_delete(keyed_server: ServerProcess) -> None:
    url = keyed_server.url
    small = _encode(Image.new("RGB", (8, 8), (0, 90, 200)), "PNG")
    ids = []
    for _ in range(MAX_COUNT):
        response = _upload(keyed_server, KEY_A, small)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    over = _upload(keyed_server, KEY_A, small)
    assert over.status_code == 413
    assert f"holds {MAX_COUNT} of its {MAX_COUNT} uploads" in over.json()["detail"]

    # The other key neither sees nor deletes key A's uploads, and its own quota is untouched.
    listed_b = httpx.get(f"{url}/uploads", headers=_auth(KEY_B)).json()
    assert listed_b["count"] == 0 and listed_b["uploads"] == []
    assert httpx.delete(f"{url}/uploads/{ids[0]}", headers=_auth(KEY_B)).status_code == 404
    assert httpx.delete(f"{url}/uploads/{'0' * 32}", headers=_auth(KEY_A)).status_code == 404
    listed_a = httpx.get(f"{url}/uploads", headers=_auth(KEY_A)).json()
    assert [item["id"] for item in listed_a["uploads"]] == ids
    assert listed_a["bytes"] == MAX_COUNT * len(small) and listed_a["max_count"] == MAX_COUNT

    # Deleting frees quota; a deleted upload is gone for good.
    assert httpx.delete(f"{url}/uploads/{ids[0]}", headers=_auth(KEY_A)).status_code == 204
    assert httpx.delete(f"{url}/uploads/{ids[0]}", headers=_auth(KEY_A)).status_code == 404
    again = _upload(keyed_server, KEY_A, small)
    assert again.status_code == 201
    ids = ids[1:] + [again.json()["id"]]

    # Bytes are a quota too: two noisy images of ~300 KB do not fit in 500 KB.
    noise = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (320, 320, 3), np.uint8)), "PNG")
    assert MAX_BYTES / 2 < len(noise) < MAX_BYTES
    first = _upload(keyed_server, KEY_B, noise)
    assert first.status_code == 201
    second = _upload(keyed_server, KEY_B, noise)
    assert second.status_code == 413
    assert f"over its {MAX_BYTES}-byte limit" in second.json()["detail"]

    assert httpx.delete(f"{url}/uploads/{first.json()['id']}", headers=_auth(KEY_B)).status_code == 204
    for upload_id in ids:
        assert httpx.delete(f"{url}/uploads/upload:{upload_id}", headers=_auth(KEY_A)).status_code == 204
    assert httpx.get(f"{url}/uploads", headers=_auth(KEY_A)).json()["count"] == 0
