"""The API picks the capability table of the family the model directory declares in its dreamreel.json.

In-process (FastAPI's test client) and torch-free: only dreamreel.json is read, no weights are needed.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dreamreel.api.app import create_app
from dreamreel.config import Settings


def _png_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 40, 40)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _client(tmp_path: Path, family: str | None) -> TestClient:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    if family is not None:
        (model_dir / "dreamreel.json").write_text(json.dumps({"family": family}))
    app = create_app(Settings(data_dir=tmp_path / "data", model_dir=model_dir), run_dispatcher=False)
    return TestClient(app)


def _create(client: TestClient, **keyframes: dict) -> tuple[int, dict]:
    body = {"prompt": "a red ball rolls", "model": "ray-2", "keyframes": keyframes}
    response = client.post("/dream-machine/v1/generations", json=body)
    return response.status_code, response.json()


@pytest.mark.parametrize("family", ["wan-vace", "ltx-condition", None])
def test_families_with_every_control_accept_an_end_image(tmp_path: Path, family: str | None) -> None:
    status, body = _create(_client(tmp_path, family), frame1={"type": "image", "url": _png_uri()})
    assert status == 201, body


def test_an_image_to_video_family_refuses_an_end_image(tmp_path: Path) -> None:
    client = _client(tmp_path, "wan-i2v")
    status, body = _create(client, frame1={"type": "image", "url": _png_uri()})
    assert status == 422
    assert "wan-i2v" in body["detail"] and "frame1" in body["detail"], body
    status, body = _create(client, frame0={"type": "image", "url": _png_uri()})
    assert status == 201, body
