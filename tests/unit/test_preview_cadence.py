"""When the worker makes a ``progress_video`` preview (``worker/preview.py``), on a clock the test drives: at
most every ``interval_s`` and ``budget`` x a preview's cost, never in the denoising's last ``interval_s``, the
pace learned from the steps with the previews left out. Also the writer over a real SQLite store and files,
and the workers' torch thread split (``Settings.torch_threads``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamreel.config import DEFAULT_MODEL_DIR, Settings
from dreamreel.core.generation import Generation
from dreamreel.core.request import GenerationRequest
from dreamreel.files import LocalFiles
from dreamreel.media.probe import probe_mp4
from dreamreel.store.sqlite import SQLiteStore
from dreamreel.worker.loop import Worker
from dreamreel.worker.preview import PreviewCadence, PreviewWriter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_estimate() -> Iterator[None]:
    """The cost carried from a process's previous job starts unknown in each test."""
    PreviewCadence.estimate = 0.0
    yield
    PreviewCadence.estimate = 0.0


def run(cadence: PreviewCadence, clock: Clock, total: int, step_s: float, preview_s: float,
        first: int = 1) -> list[int]:
    """Steps ``first..total`` of ``step_s`` each; a due preview costs ``preview_s``. Returns the steps previewed."""
    previewed = []
    for step in range(first, total + 1):
        clock.now += step_s
        if cadence.due(step, total):
            started = clock.now
            clock.now += preview_s
            assert cadence.made(started) == pytest.approx(preview_s)
            previewed.append(step)
    return previewed


def test_a_long_run_gets_one_preview_per_interval_and_none_in_its_last_interval() -> None:
    clock = Clock()
    cadence = PreviewCadence(interval_s=1.0, budget=9.0, clock=clock)
    # 48 steps of 1/8 s (6 s); previews cost 1/16 s (9x that is below the interval, so the interval rules).
    previewed = run(cadence, clock, total=48, step_s=0.125, preview_s=0.0625)
    assert previewed == [8, 16, 24, 32, 40]
    assert cadence.step_seconds() == 0.125  # the previews' time is not taken for steps'
    # Step 40 had exactly one interval of steps left; one step fewer and it is in the last interval: none.
    clock = Clock()
    cadence = PreviewCadence(interval_s=1.0, budget=9.0, clock=clock)
    assert run(cadence, clock, total=47, step_s=0.125, preview_s=0.0625) == [8, 16, 24, 32]


def test_a_short_job_gets_no_preview_the_clip_comes_first() -> None:
    """The embedded model's 5 s clip: 20 steps in well under two intervals."""
    clock = Clock()
    cadence = PreviewCadence(interval_s=2.0, clock=clock)
    assert run(cadence, clock, total=20, step_s=0.15, preview_s=0.2) == []


def test_an_expensive_preview_waits_budget_times_its_cost_also_into_the_next_job() -> None:
    clock = Clock()
    cadence = PreviewCadence(interval_s=0.5, budget=4.0, clock=clock)
    # Previews cost 0.5 s: after each, 4 x 0.5 = 2 s of steps (16) before the next.
    assert run(cadence, clock, total=100, step_s=0.125, preview_s=0.5) == [4, 20, 36, 52, 68, 84]
    assert PreviewCadence.estimate == 0.5
    clock2 = Clock()
    next_job = PreviewCadence(interval_s=0.5, budget=4.0, clock=clock2)  # its first waits 2 s, not 0.5
    assert run(next_job, clock2, total=100, step_s=0.125, preview_s=0.5)[0] == 16


def test_a_new_run_of_steps_reanchors_the_pace_and_interval_zero_turns_previews_off() -> None:
    clock = Clock()
    cadence = PreviewCadence(interval_s=1.0, budget=9.0, clock=clock)
    assert run(cadence, clock, total=30, step_s=0.125, preview_s=0.0625) == [8, 16]
    clock.now += 50.0  # between the parts of a long clip: encoding, the next part's setup
    assert run(cadence, clock, total=30, step_s=0.125, preview_s=0.0625) == [1, 9, 17]  # overdue; then as usual
    assert cadence.step_seconds() == 0.125  # the 50 s gap was not taken for a step
    off = PreviewCadence(interval_s=0.0, clock=clock)
    assert run(off, clock, total=200, step_s=0.125, preview_s=0.0625) == []


def test_writer_publishes_small_previews_keeps_the_last_two_and_cleans_up(tmp_path: Path) -> None:
    store, files = SQLiteStore(tmp_path / "db.sqlite"), LocalFiles(tmp_path / "files")
    job = store.create(Generation.new(owner="local", dialect="luma", request=GenerationRequest(prompt="x"), seed=0))
    assert store.claim("w1", 30) is not None
    writer = PreviewWriter(store, files, job.id, "w1", fps=8, interval_s=0.01)
    frames = np.random.default_rng(0).integers(0, 255, (9, 96, 160, 3), dtype=np.uint8)
    for _ in range(3):
        writer.deliver(frames)
    kept = sorted(files.generation_dir(job.id).glob("progress-*.mp4"))
    assert [p.name for p in kept] == ["progress-002.mp4", "progress-003.mp4"]
    assert store.get(job.id).assets.progress_video == files.key_for(kept[-1])
    info = probe_mp4(kept[-1])
    assert (info.width, info.height, info.frames) == (160, 96, 9)
    assert writer.count == 3 and writer.seconds > 0
    other = PreviewWriter(store, files, job.id, "w2", fps=8, interval_s=0.01)  # not the job's worker: no record
    other.deliver(frames)
    assert not (files.generation_dir(job.id) / "progress-001.mp4").exists()
    writer.cleanup()
    assert not list(files.generation_dir(job.id).glob("progress-*.mp4"))


def test_torch_threads_split_the_cores_between_workers(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    assert Settings(workers=1).resolved_torch_threads == cores
    assert Settings(workers=2).resolved_torch_threads == max(1, cores // 2)
    assert Settings(workers=64).resolved_torch_threads == 1
    assert Settings(workers=0).resolved_torch_threads == cores  # an API-only serve: a lone worker's share
    assert Settings(workers=2, torch_threads=3).resolved_torch_threads == 3
    before = torch.get_num_threads()
    try:
        Worker(Settings(data_dir=tmp_path, model_dir=DEFAULT_MODEL_DIR, torch_threads=1)).warm_up()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
