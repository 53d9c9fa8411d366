"""Luma's ``progress_video``: a preview MP4 appears while dreaming, and is gone once the clip is done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lumaai import LumaAI
from tests.conftest import ServerProcess, wait_for

from dreamreel.media.probe import probe_mp4

STEPS = 300


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    """Many denoising steps make a job last long enough to be seen dreaming; previews every 0.5 s.

    60 steps were too few on an idle machine: the tiny model finished before the first preview.
    """
    proc = ServerProcess(
        tmp_path_factory.mktemp("preview") / "data", tiny_model_dir,
        extra_env={"DREAMREEL_STEPS": str(STEPS), "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0.5"},
    ).start()
    yield proc
    proc.stop()


def test_progress_video_while_dreaming(slow_server: ServerProcess, tmp_path: Path) -> None:
    client = LumaAI(auth_token="local-key", base_url=f"{slow_server.url}/dream-machine/v1", max_retries=0)
    created = client.generations.create(prompt="a yellow diamond circles at night", model="ray-2",
                                        aspect_ratio="16:9", resolution="540p")
    assert created.state == "queued" and created.assets is None

    def preview_while_dreaming():
        generation = client.generations.get(created.id)
        assert generation.state in ("queued", "dreaming"), generation.state  # must be seen before completion
        if generation.state == "dreaming" and generation.assets and generation.assets.progress_video:
            response = httpx.get(generation.assets.progress_video, timeout=30)
            if response.status_code == 200:  # (a newer preview may have replaced it meanwhile)
                return generation, response.content
        return None

    dreaming, content = wait_for(preview_while_dreaming, timeout=120, interval=0.1)
    assert dreaming.assets.video is None
    path = tmp_path / "progress.mp4"
    path.write_bytes(content)
    info = probe_mp4(path)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert min(info.width, info.height) <= 144 and info.width > info.height  # low-res, 16:9
    assert info.frames == 41 and info.fps == pytest.approx(8.0)  # the tiny model's native clip

    done = wait_for(lambda: (g := client.generations.get(created.id)).state in ("completed", "failed") and g,
                    timeout=300)
    assert done.state == "completed", done.failure_reason
    assert done.assets.progress_video is None and done.assets.video
    assert httpx.get(dreaming.assets.progress_video).status_code == 404  # previews are removed at the end
    logs = httpx.get(f"{slow_server.url}/fal-ai/luma-dream-machine/requests/{created.id}/status",
                     params={"logs": 1}).json()["logs"]
    assert any(log["message"].startswith(f"Denoising step {STEPS}/{STEPS}") for log in logs)
