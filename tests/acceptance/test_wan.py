"""A server on a Wan checkpoint: ``dreamreel build-tiny-model --family <family>``, then ``serve`` it and complete
a Luma request with a start and an end image through that family's backend (VACE's video + mask, or
FLF2V's ``image`` + ``last_image``)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.acceptance.imagehost import data_uri, png_bytes
from tests.conftest import ServerProcess, run_cli

from dreamreel.media.probe import read_frames


@pytest.mark.parametrize("family", ["wan-vace", "wan-flf2v"])
def test_serves_start_and_end_image_generation_on_a_wan_model(tmp_path: Path, family: str) -> None:
    model_dir = tmp_path / "tiny-wan"
    assert run_cli(["build-tiny-model", str(model_dir), "--family", family]) == 0
    assert f'"family": "{family}"' in (model_dir / "dreamreel.json").read_text()

    server = ServerProcess(tmp_path / "data", model_dir).start()
    try:
        base = f"{server.url}/dream-machine/v1/generations"
        created = httpx.post(base, json={
            "prompt": "a blue ball rolls across the table", "model": "ray-2", "resolution": "540p",
            "aspect_ratio": "16:9", "duration": "5s",
            "keyframes": {"frame0": {"type": "image", "url": data_uri(png_bytes((30, 60, 200)))},
                          "frame1": {"type": "image", "url": data_uri(png_bytes((220, 40, 40)))}},
        }, timeout=30)
        assert created.status_code == 201, created.text
        generation_id = created.json()["id"]

        deadline = time.monotonic() + 120
        generation = created.json()
        while generation["state"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            generation = httpx.get(f"{base}/{generation_id}", timeout=30).json()
        assert generation["state"] == "completed", (generation.get("failure_reason"), server.log_path.read_text())

        video = httpx.get(generation["assets"]["video"], timeout=60)
        assert video.status_code == 200
        path = tmp_path / "clip.mp4"
        path.write_bytes(video.content)
        frames = read_frames(path)
        assert frames.shape == (120, 540, 960, 3)
        assert frames.std() > 5, "the clip is one flat colour"
    finally:
        server.stop()
