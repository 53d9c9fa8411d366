"""A models config with three public names over two families, served by one worker through every dialect.

The worker keeps one checkpoint loaded (``max_loaded_models`` 1), so alternating requests switch models; each
must still get its own model's output: the same name at the same seed gives the same frames whatever ran
between, different models differ. The config puts every model on a device this machine lacks; the worker's
``--device cpu`` (``DREAMREEL_DEVICE``) wins, or nothing could load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.conftest import ServerProcess

from dreamreel.media.probe import read_frames

SEED = 1234
LUMA = "/dream-machine/v1/generations"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path,
           tiny_wan_model_dir: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("models-config")
    config = root / "models.toml"
    config.write_text(f"""
default = "ltx-a"
[models.ltx-a]
family = "ltx-condition"
path = "{tiny_model_dir}"
device = "cuda:7"
steps = 2
[models.ray-flash-2]
family = "ltx-condition"
path = "{tiny_model_dir}"
device = "cuda:7"
steps = 1
[models.wan-b]
family = "wan-vace"
path = "{tiny_wan_model_dir}"
device = "cuda:7"
steps = 2
""")
    proc = ServerProcess(root / "data", tiny_model_dir, extra_env={
        "DREAMREEL_MODELS_CONFIG": str(config), "DREAMREEL_DEVICE": "cpu", "DREAMREEL_MAX_LOADED_MODELS": "1",
    }).start()
    yield proc
    proc.stop()


def finished_luma(server: ServerProcess, generation_id: str) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}{LUMA}/{generation_id}", timeout=10).json()
        if body["state"] in ("completed", "failed"):
            assert body["state"] == "completed", body
            return body
        time.sleep(0.2)
    raise AssertionError(f"{generation_id} did not finish")


def frames_of(server: ServerProcess, generation: dict, tmp_path: Path) -> np.ndarray:
    path = tmp_path / f"{generation['id']}.mp4"
    path.write_bytes(httpx.get(generation["assets"]["video"], timeout=30).content)
    return read_frames(path)


def make(server: ServerProcess, model: str) -> str:
    """A small clip (256x144, 1 s, one seed) of ``model`` through OpenAI's dialect; its generation id."""
    answer = httpx.post(f"{server.url}/v1/videos", json={"prompt": "a red ball bounces on grass", "seed": SEED,
                                                         "model": model, "size": "256x144", "seconds": "1"},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def test_three_names_over_two_families_each_get_their_own_model(server: ServerProcess, tmp_path: Path) -> None:
    # Queued in this order, so the worker (one checkpoint loaded at a time) switches model for every job.
    order = ["ltx-a", "wan-b", "ray-flash-2", "ltx-a again", "ray-2"]
    ids = {name: make(server, name.removesuffix(" again")) for name in order}
    done = {name: finished_luma(server, generation_id) for name, generation_id in ids.items()}
    frames = {name: frames_of(server, generation, tmp_path) for name, generation in done.items()}
    assert [done[name]["model"] for name in order] == ["ltx-a", "wan-b", "ray-flash-2", "ltx-a", "ray-2"]
    assert all(generation["seed"] == SEED for generation in done.values())
    assert {clip.shape for clip in frames.values()} == {(24, 144, 256, 3)}

    def difference(one: str, other: str) -> float:
        return float(np.abs(frames[one].astype(np.int16) - frames[other].astype(np.int16)).mean())

    # The same model at the same seed makes the same clip though two other models ran in between, and the
    # unconfigured built-in ray-2 is the default model (ltx-a). The frames are bit-exact; the MP4s are not
    # (two x264 encodes of the same frames can differ by a few levels here, from run to run), so "the same" is
    # within a level on average ...
    same = [difference("ltx-a", "ltx-a again"), difference("ltx-a", "ray-2")]
    assert max(same) < 1.0, same
    # ... and each model makes its own: another family, or the same checkpoint at other settings.
    for one, other in (("ltx-a", "wan-b"), ("ltx-a", "ray-flash-2"), ("wan-b", "ray-flash-2")):
        assert difference(one, other) > 4 * max(max(same), 0.5), (one, other, difference(one, other), same)


def test_names_resolve_by_each_dialects_rule_and_unknown_ones_are_refused(server: ServerProcess) -> None:
    models = httpx.get(f"{server.url}/v1/models", timeout=10).json()
    assert [model["id"] for model in models["data"]] == ["ltx-a", "ray-flash-2", "wan-b", "ray-2"]
    # Each dialect's rule for an operator's name: Luma's and OpenAI's model, fal's endpoint id, AI/ML's luma/<name>.
    clip = {"prompt": "x", "resolution": "540p"}
    accepted = [
        httpx.post(f"{server.url}{LUMA}", json={**clip, "model": "wan-b"}, timeout=10).json()["id"],
        httpx.post(f"{server.url}/fal-ai/luma-dream-machine/wan-b/image-to-video",
                   json={**clip, "image_url": "https://example.com/a.png"}, timeout=10).json()["request_id"],
        httpx.post(f"{server.url}/v2/video/generations", json={**clip, "model": "luma/wan-b"},
                   timeout=10).json()["id"].split(":")[0],
    ]
    for generation_id in accepted:  # nothing here needs them run
        assert httpx.get(f"{server.url}{LUMA}/{generation_id}", timeout=10).json()["model"] == "wan-b"
        assert httpx.delete(f"{server.url}{LUMA}/{generation_id}", timeout=10).status_code == 204
    refusals = [
        httpx.post(f"{server.url}{LUMA}", json={"prompt": "x", "model": "nope"}, timeout=10),
        httpx.post(f"{server.url}/v2/video/generations", json={"prompt": "x", "model": "luma/nope"}, timeout=10),
        httpx.post(f"{server.url}/v1/videos", json={"prompt": "x", "model": "nope"}, timeout=10),
    ]
    for answer in refusals:
        assert answer.status_code in (400, 422), answer.text
        assert "ltx-a" in answer.text and "wan-b" in answer.text, answer.text
    fal = httpx.post(f"{server.url}/fal-ai/luma-dream-machine/nope", json={"prompt": "x"}, timeout=10)
    assert fal.status_code == 404 and "wan-b" in fal.text, fal.text
