"""A request whose clip cannot fit its model's GPU memory budget is refused at submission, in every dialect.

A live API (no workers: nothing here needs to run) with a models config: ``ray-2`` on the tiny model with a
budget between the estimated peak of a 1:1 5 s clip and that of a 21:9 9 s one, ``roomy`` on the same
checkpoint with no budget. The native sizes in the messages are the tiny model's grid (64 px short side,
multiples of 32, 8 fps): the API sizes the clip as the worker will, without loading the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import ServerProcess

from dreamreel.engine.memory import GIB, estimate_peak_bytes

LUMA = "/dream-machine/v1/generations"
SMALL = (64, 64, 41)
"""1:1, 5 s: 5 s x 8 fps -> 41 frames."""
WIDE = (160, 64, 73)
"""21:9, 9 s: 64 x 21/9 rounded to 32 px; 9 s x 8 fps -> 73 frames."""
OPENAI_LONG = (128, 64, 161)
"""OpenAI's 1280x720 for 20 s: 64 x 16/9 rounded to 32 px; 20 s x 8 fps -> 161 frames."""


def frugal_peak(model_dir: Path, size: tuple[int, int, int]) -> int:
    """The clip's estimated peak under the most frugal plan (what the guard compares with the budget)."""
    return estimate_peak_bytes("ltx-condition", model_dir, *size, "float32", budget_bytes=0).peak_bytes


@pytest.fixture(scope="module")
def budget_gib(tiny_model_dir: Path) -> float:
    fits, too_big = frugal_peak(tiny_model_dir, SMALL), min(frugal_peak(tiny_model_dir, WIDE),
                                                            frugal_peak(tiny_model_dir, OPENAI_LONG))
    assert fits < too_big
    return round((fits + too_big) / 2 / GIB, 6)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, budget_gib: float,
           ) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("memory-guard")
    config = root / "models.toml"
    config.write_text(f"""
default = "ray-2"
[models.ray-2]
family = "ltx-condition"
path = "{tiny_model_dir}"
memory_budget_gb = {budget_gib}
[models.roomy]
family = "ltx-condition"
path = "{tiny_model_dir}"
""")
    proc = ServerProcess(root / "data", tiny_model_dir, workers=0,
                         extra_env={"DREAMREEL_MODELS_CONFIG": str(config)}).start()
    yield proc
    proc.stop()


def test_a_clip_over_the_budget_is_refused_naming_the_limit_in_every_dialect(
    server: ServerProcess, budget_gib: float,
) -> None:
    limit = f"model ray-2's memory budget is {budget_gib:g} GiB"
    wide = {"prompt": "a red ball rolls", "aspect_ratio": "21:9", "duration": "9s"}

    luma = httpx.post(server.url + LUMA, json={**wide, "model": "ray-2", "resolution": "1080p"}, timeout=10)
    assert luma.status_code == 422, luma.text
    detail = luma.json()["detail"]
    assert detail.startswith("this clip needs about ") and " GiB of GPU memory at 1080p 21:9 9 s " in detail
    assert "(160x64, 73 frames natively, even with group offload)" in detail and limit in detail

    fal = httpx.post(f"{server.url}/fal-ai/luma-dream-machine/ray-2", json=wide, timeout=10)
    assert fal.status_code == 422 and limit in fal.text and "160x64, 73 frames" in fal.text, fal.text

    openai = httpx.post(f"{server.url}/v1/videos", json={"prompt": "a red ball rolls", "model": "ray-2",
                                                         "size": "1280x720", "seconds": "20"}, timeout=10)
    assert openai.status_code == 400, openai.text  # OpenAI's invalid_request_error, on the field it names size
    error = openai.json()["error"]
    assert "at 1280x720 20 s (128x64, 161 frames natively" in error["message"] and limit in error["message"]
    assert error["param"] == "size"

    # ray-flash-2, left out of the config, is the default model: the same checkpoint and budget.
    flash = httpx.post(server.url + LUMA, json={**wide, "model": "ray-flash-2"}, timeout=10)
    assert flash.status_code == 422 and "model ray-flash-2's memory budget" in flash.json()["detail"]


def test_a_clip_within_the_budget_and_a_model_without_one_are_accepted(server: ServerProcess) -> None:
    small = httpx.post(server.url + LUMA, json={"prompt": "a red ball rolls", "model": "ray-2",
                                                "aspect_ratio": "1:1", "duration": "5s"}, timeout=10)
    assert small.status_code == 201, small.text
    roomy = httpx.post(server.url + LUMA, json={"prompt": "a red ball rolls", "model": "roomy",
                                                "aspect_ratio": "21:9", "duration": "9s"}, timeout=10)
    assert roomy.status_code == 201, roomy.text
