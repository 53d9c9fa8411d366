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


def _create(client: TestClient, loop: bool = False, **keyframes: dict) -> tuple[int, dict]:
    body: dict = {"prompt": "a red ball rolls", "model": "ray-2", "loop": loop}
    if keyframes:
        body["keyframes"] = keyframes
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


ACCEPTED = {
    "wan-t2v": [((), False), ((), True)],
    "wan-i2v": [(("frame0",), False), (("frame0",), True)],
    "wan-flf2v": [(("frame0", "frame1"), False), (("frame0",), True)],
}
"""Per Wan family, the (image slots, loop) requests it serves."""


@pytest.mark.parametrize(("family", "slots", "loop"),
                         [(family, slots, loop) for family, cases in ACCEPTED.items() for slots, loop in cases])
def test_wan_families_accept_what_their_pipelines_can_do(
    tmp_path: Path, family: str, slots: tuple[str, ...], loop: bool
) -> None:
    image = {"type": "image", "url": _png_uri()}
    status, body = _create(_client(tmp_path, family), loop=loop, **{slot: image for slot in slots})
    assert status == 201, body


@pytest.mark.parametrize(("family", "slots", "loop", "words"), [
    ("wan-t2v", ("frame0",), False, "does not support start_image (keyframes.frame0)"),
    ("wan-t2v", ("frame1",), False, "does not support end_image (keyframes.frame1)"),
    ("wan-i2v", (), False, "needs start_image (keyframes.frame0)"),
    ("wan-i2v", (), True, "needs start_image (keyframes.frame0)"),
    ("wan-i2v", ("frame0", "frame1"), False, "does not support end_image (keyframes.frame1)"),
    # WanImageToVideoPipeline cannot generate without a first frame: an end image alone is refused.
    ("wan-flf2v", ("frame1",), False, "needs start_image (keyframes.frame0)"),
    ("wan-flf2v", (), False, "needs start_image (keyframes.frame0)"),
    # Wan 2.1 FLF2V embeds exactly two images: a start image needs an end image or a loop.
    ("wan-flf2v", ("frame0",), False, "needs end_image (keyframes.frame1) or loop (loop)"),
])
def test_wan_families_refuse_what_their_pipelines_cannot_do(
    tmp_path: Path, family: str, slots: tuple[str, ...], loop: bool, words: str
) -> None:
    image = {"type": "image", "url": _png_uri()}
    status, body = _create(_client(tmp_path, family), loop=loop, **{slot: image for slot in slots})
    assert status == 422, body
    assert f"model ray-2 ({family}) {words}" in body["detail"], body


def test_every_family_in_the_capability_table_has_a_backend() -> None:
    from dreamreel.core.capabilities import FAMILY_CONTROLS, FAMILY_NEEDS
    from dreamreel.engine.registry import FAMILIES

    assert set(FAMILIES) == set(FAMILY_CONTROLS)
    assert set(FAMILY_NEEDS) <= set(FAMILY_CONTROLS)
