"""Hostile and malformed create requests: each a 4xx whose message names the field; no 5xx ever."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.conftest import ServerProcess

VALID = {"prompt": "a red ball", "model": "ray-2", "aspect_ratio": "16:9", "resolution": "540p", "duration": "5s"}

CASES: list[tuple[str, object, str]] = [
    ("missing prompt", {k: v for k, v in VALID.items() if k != "prompt"}, "prompt"),
    ("empty prompt", {**VALID, "prompt": ""}, "prompt"),
    ("blank prompt", {**VALID, "prompt": "   "}, "prompt"),
    ("prompt is a number", {**VALID, "prompt": 42}, "prompt"),
    ("prompt is a list", {**VALID, "prompt": ["a", "b"]}, "prompt"),
    ("1 MB prompt", {**VALID, "prompt": "x" * 1_000_000}, "prompt"),
    ("unknown aspect ratio", {**VALID, "aspect_ratio": "5:4"}, "aspect_ratio"),
    ("aspect ratio wrong type", {**VALID, "aspect_ratio": 1.77}, "aspect_ratio"),
    ("resolution 999p", {**VALID, "resolution": "999p"}, "resolution"),
    ("resolution as number", {**VALID, "resolution": 720}, "resolution"),
    ("duration 7s", {**VALID, "duration": "7s"}, "duration"),
    ("duration as number", {**VALID, "duration": 5}, "duration"),
    ("unknown model", {**VALID, "model": "ray-9"}, "model"),
    ("loop as string", {**VALID, "loop": "yes"}, "loop"),
    ("unknown field", {**VALID, "colour": "red"}, "colour"),
    ("keyframe without url", {**VALID, "keyframes": {"frame0": {"type": "image"}}}, "keyframes"),
    ("keyframe bad type", {**VALID, "keyframes": {"frame0": {"type": "audio", "url": "x"}}}, "keyframes"),
    ("callback not http", {**VALID, "callback_url": "file:///etc/passwd"}, "callback_url"),
    ("concepts not a list", {**VALID, "concepts": "dolly_zoom"}, "concepts"),
]
RAW_CASES: list[tuple[str, bytes, str]] = [
    ("invalid JSON", b'{"prompt": "a red ball",', "body"),
    ("JSON array body", b'["prompt"]', "body"),
    ("empty body", b"", "body"),
]


@pytest.mark.parametrize(("name", "body", "field"), CASES, ids=[c[0] for c in CASES])
def test_malformed_json_fields(shared_server: ServerProcess, name: str, body: object, field: str) -> None:
    response = httpx.post(f"{shared_server.url}/dream-machine/v1/generations/video", json=body, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["detail"], response.json()


@pytest.mark.parametrize(("name", "body", "field"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_malformed_raw_bodies(shared_server: ServerProcess, name: str, body: bytes, field: str) -> None:
    response = httpx.post(
        f"{shared_server.url}/dream-machine/v1/generations",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["detail"]


def test_oversized_body_is_413_and_server_keeps_serving(shared_server: ServerProcess) -> None:
    body = json.dumps({**VALID, "prompt": "x" * (17 * 1024 * 1024)})
    response = httpx.post(f"{shared_server.url}/dream-machine/v1/generations", content=body, timeout=60)
    assert response.status_code == 413
    assert "body" in response.json()["detail"]
    ok = httpx.post(f"{shared_server.url}/dream-machine/v1/generations", json=VALID, timeout=30)
    assert ok.status_code == 201 and ok.json()["state"] == "queued"


def test_bad_list_paging_and_unsupported_features(shared_server: ServerProcess) -> None:
    bad = httpx.get(f"{shared_server.url}/dream-machine/v1/generations", params={"limit": -1})
    assert bad.status_code == 422 and "limit" in bad.json()["detail"]
    # loop is supported, but not together with an end keyframe (a loop ends where it starts).
    loop = httpx.post(f"{shared_server.url}/dream-machine/v1/generations", json={
        **VALID, "loop": True, "keyframes": {"frame1": {"type": "image", "url": "https://example.com/a.png"}}})
    assert loop.status_code == 422 and "loop" in loop.json()["detail"]
    assert httpx.get(f"{shared_server.url}/healthz").status_code == 200
