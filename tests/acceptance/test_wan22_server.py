"""One server serving the three Wan 2.2 families at once, by operator-named models (a models config): each
completes a Luma request with a control its family does and delivers an MP4 of the requested size, fps and
duration; a control its family cannot do is a 422 naming the field."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.acceptance.imagehost import data_uri, png_bytes
from tests.conftest import ServerProcess

from dreamreel.engine.tiny_real import FAMILY_CONFIGS, build_from_real_config
from dreamreel.media.probe import probe_mp4

MODELS = {"wan-ti2v": "wan22-ti2v", "wan-a14b-t2v": "wan22-t2v", "wan-a14b-i2v": "wan22-i2v"}
"""Operator-added public names -> the family each serves."""
RED, BLUE = data_uri(png_bytes((220, 40, 40))), data_uri(png_bytes((30, 60, 200)))
DONE = ("completed", "failed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("wan22-server")
    lines = ['default = "wan-ti2v"']
    for name, family in MODELS.items():
        model_dir = build_from_real_config(FAMILY_CONFIGS[family], root / "models" / name)
        lines += [f"[models.{name}]", f'family = "{family}"', f'path = "{model_dir}"']
    config = root / "models.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {"DREAMREEL_MODELS_CONFIG": str(config), "DREAMREEL_MAX_LOADED_MODELS": "3"}
    process = ServerProcess(root / "data", root / "models" / "wan-ti2v", extra_env=env).start()
    try:
        yield process
    finally:
        process.stop()


def _body(model: str, **fields: object) -> dict:
    return {"prompt": "a red ball rolls across the table", "model": model, "resolution": "540p",
            "aspect_ratio": "16:9", "duration": "5s", **fields}


def test_each_family_serves_its_controls_and_refuses_the_others(server: ServerProcess, tmp_path: Path) -> None:
    base = f"{server.url}/dream-machine/v1/generations"
    image = {"type": "image", "url": RED}
    requests = {
        "wan-ti2v": _body("wan-ti2v", keyframes={"frame0": image}),  # image-to-video on the TI2V weights
        "wan-a14b-t2v": _body("wan-a14b-t2v", loop=True),  # text, looped
        "wan-a14b-i2v": _body("wan-a14b-i2v", keyframes={"frame0": image,  # first and last frame
                                                         "frame1": {"type": "image", "url": BLUE}}),
    }
    created = {}
    for name, body in requests.items():
        response = httpx.post(base, json=body, timeout=30)
        assert response.status_code == 201, response.text
        created[name] = response.json()["id"]

    refusals = {
        "wan-ti2v": ({"keyframes": {"frame0": image, "frame1": {"type": "image", "url": BLUE}}}, "keyframes.frame1"),
        "wan-a14b-t2v": ({"keyframes": {"frame0": image}}, "keyframes.frame0"),
        "wan-a14b-i2v": ({}, "keyframes.frame0"),  # it cannot begin without a start image
    }
    for name, (fields, field) in refusals.items():
        response = httpx.post(base, json=_body(name, **fields), timeout=30)
        assert response.status_code == 422, (name, response.text)
        assert field in response.text and MODELS[name] in response.text, response.text
    unknown = httpx.post(base, json=_body("wan-9"), timeout=30)
    assert unknown.status_code in (400, 422) and all(name in unknown.text for name in MODELS), unknown.text

    deadline = time.monotonic() + 180
    generations = {name: {"state": "queued"} for name in created}
    while any(g["state"] not in DONE for g in generations.values()) and time.monotonic() < deadline:
        time.sleep(0.3)
        generations = {name: httpx.get(f"{base}/{gid}", timeout=30).json() for name, gid in created.items()}
    for name, generation in generations.items():
        assert generation["state"] == "completed", (name, generation.get("failure_reason"),
                                                    server.log_path.read_text()[-3000:])
        assert generation["model"] == name
        video = httpx.get(generation["assets"]["video"], timeout=60)
        assert video.status_code == 200
        path = tmp_path / f"{name}.mp4"
        path.write_bytes(video.content)
        probed = probe_mp4(path)
        assert (probed.width, probed.height, probed.fps, probed.frames) == (960, 540, 24, 120), name
        assert probed.duration_s == pytest.approx(5.0, abs=0.05), name
