"""``DREAMREEL_COMPILE=regional``: a worker compiles its model's repeated transformer blocks at load and warms them
up, so a job runs the compiled blocks without building a graph, and makes the clip an eager worker makes.

Real components: the API server as a subprocess on loopback (no worker of its own), two in-process workers on
its SQLite store (one compiled, one eager), the tiny LTX-Video model, MP4s downloaded and decoded with PyAV. The
compile backend is ``eager`` (dynamo captures the graph and runs it as captured: the whole compile path but
code generation, seconds on a CPU; ``bench/bench_compile.py`` measures inductor)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import httpx
import numpy as np
import pytest
from tests.conftest import ServerProcess

from dreamreel.cli import _settings, build_parser
from dreamreel.config import Settings
from dreamreel.engine.catalog import ModelSpec
from dreamreel.engine.compile import CompileError, CompileOptions, compile_loaded, graphs_built, is_compiled
from dreamreel.engine.registry import load_backend
from dreamreel.engine.speed import CacheSpec
from dreamreel.media.probe import read_frames
from dreamreel.worker.loop import Worker

SEED = 11
CLIP = {"prompt": "a red ball bounces on grass", "size": "256x144", "seconds": "1"}
"""A 1 s clip: another shape than the warm-up's default 5 s one, which the dynamic graph must serve as it is."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("compile") / "data", tiny_model_dir, workers=0).start()
    yield server
    server.stop()


def worker_for(api: ServerProcess, compile_mode: str) -> Worker:
    """A worker on the server's store. Its speed presets run no step cache: a cache's hooks would add warm-up
    passes with graphs of their own (``engine/compile.py``), seconds each that this test's budget has no room for."""
    settings = Settings(data_dir=api.data_dir, model_dir=api.model_dir, compile=compile_mode, compile_backend="eager",
                        preview_interval_seconds=0)
    catalog = settings.catalog()
    uncached = {name: replace(entry, speeds=MappingProxyType({speed: replace(preset, cache=CacheSpec())
                                                              for speed, preset in entry.speeds.items()}))
                for name, entry in catalog.models.items()}
    return Worker(settings, catalog=replace(catalog, models=MappingProxyType(uncached)))


@pytest.fixture(scope="module")
def compiled(api: ServerProcess) -> Iterator[tuple[Worker, int]]:
    """A compiled worker after its load, and the graphs dynamo had built before it started."""
    before = graphs_built()
    worker = worker_for(api, "regional")
    worker.warm_up()
    yield worker, before
    worker.store.close()


def submit(api: ServerProcess, seed: int) -> str:
    answer = httpx.post(f"{api.url}/v1/videos", json={**CLIP, "seed": seed}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def frames_of(api: ServerProcess, generation_id: str, tmp_path: Path) -> np.ndarray:
    luma = f"{api.url}/dream-machine/v1/generations/{generation_id}"
    deadline = time.monotonic() + 30
    while (body := httpx.get(luma, timeout=10).json())["state"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["state"] == "completed", body
    path = tmp_path / f"{generation_id}.mp4"
    path.write_bytes(httpx.get(body["assets"]["video"], timeout=30).content)
    return read_frames(path)


def test_the_worker_compiles_every_block_at_load(compiled: tuple[Worker, int]) -> None:
    worker, before = compiled
    transformer = worker.backend_for(worker.catalog.default).pipe.transformer  # loaded already: not reloaded
    blocks = list(transformer.transformer_blocks)
    assert blocks and all(is_compiled(block) for block in blocks)
    assert not is_compiled(transformer)  # regional: the blocks, not the whole model
    assert graphs_built() > before  # the warm-up built the graphs at load


def test_a_job_through_the_api_runs_warm_and_matches_an_eager_worker(
    api: ServerProcess, compiled: tuple[Worker, int], tmp_path: Path
) -> None:
    worker, _ = compiled
    generation_id = submit(api, SEED)
    graphs = graphs_built()
    assert worker.run_once()
    assert graphs_built() == graphs  # kept warm: the job's shape needed no graph of its own
    compiled_frames = frames_of(api, generation_id, tmp_path)

    eager = worker_for(api, "off")
    try:
        same, other = submit(api, SEED), submit(api, SEED + 1)
        assert eager.run_once() and eager.run_once()
        transformer = eager.backend_for(eager.catalog.default).pipe.transformer
        assert not any(is_compiled(block) for block in transformer.transformer_blocks)
    finally:
        eager.store.close()
    eager_frames, other_frames = frames_of(api, same, tmp_path), frames_of(api, other, tmp_path)

    def difference(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())

    assert compiled_frames.shape == eager_frames.shape == (24, 144, 256, 3)
    # The captured graph computes what the eager blocks compute: the frames are the same; two x264 encodes of the
    # same frames may differ by a level here and there, so "the same" is within one level on average, and a
    # clip of another seed is far from it.
    assert difference(compiled_frames, eager_frames) < 1.0
    assert difference(eager_frames, other_frames) > 2.0


def test_a_compile_that_fails_at_load_says_how_to_turn_it_off(tiny_model_dir: Path) -> None:
    backend = load_backend(ModelSpec(family="ltx-condition", path=tiny_model_dir))
    with pytest.raises(CompileError, match="DREAMREEL_COMPILE=off"):
        compile_loaded(backend, CompileOptions(mode="regional", backend="no-such-backend"))
    assert compile_loaded(backend, CompileOptions(mode="off")) is None


def test_the_cli_flag_and_the_environment_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    assert _settings(parser.parse_args(["worker", "--compile"])).compile == "regional"
    assert _settings(parser.parse_args(["serve", "--compile", "off", "--compile-backend", "eager"])).compile_backend \
        == "eager"
    assert _settings(parser.parse_args(["worker"])).compile == "off"
    monkeypatch.setenv("DREAMREEL_COMPILE", "regional")
    assert _settings(parser.parse_args(["worker"])).compile == "regional"
    monkeypatch.setenv("DREAMREEL_COMPILE", "everything")
    with pytest.raises(ValueError, match="compile"):
        _settings(parser.parse_args(["worker"]))
