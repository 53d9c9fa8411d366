"""Where a job stops and how its end is recorded: the cancel check inside the VAE decode and between delivered
frames (with the real tiny model), the size-based time limit, and the failure code each fault gets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamreel.config import Settings
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Generation
from dreamreel.core.request import GenerationRequest
from dreamreel.engine.backends.base import GenerationCancelled
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.inputs import InputError
from dreamreel.engine.render import render
from dreamreel.media.encode import encode_clip
from dreamreel.store.sqlite import SQLiteStore
from dreamreel.worker.faults import classify
from dreamreel.worker.limits import job_time_limit, limit_reason


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> LTXConditionBackend:
    return LTXConditionBackend(tiny_model_dir)


def test_a_cancel_after_the_last_step_stops_the_vae_decode(backend: LTXConditionBackend) -> None:
    """Once the last step's own check has passed, nothing of ours runs until the pipeline returns, except the
    checks before each module: the cancel must stop the decode there, not after it."""
    total = backend.default_steps
    checks_after_last_step: list[int] = []
    steps: list[int] = []

    def should_cancel() -> bool:
        if steps and steps[-1] == total:
            checks_after_last_step.append(1)
        return len(checks_after_last_step) > 1  # the step callback's check passes; the next one is the decode's

    request = GenerationRequest(prompt="a red ball", resolution="540p", aspect_ratio="1:1")
    with pytest.raises(GenerationCancelled, match="in the vae"):
        render(backend, request, seed=0, sources=None, on_step=lambda done, _: steps.append(done),
               should_cancel=should_cancel)
    assert steps[-1] == total


def test_a_cancel_while_frames_are_encoded_stops_the_encoder_and_leaves_no_file(
    backend: LTXConditionBackend, tmp_path: Path,
) -> None:
    request = GenerationRequest(prompt="a red ball", resolution="540p", aspect_ratio="1:1")
    frames_read: list[int] = []
    clip = render(backend, request, seed=0, sources=None, on_step=lambda *_: None, steps=1,
                  should_cancel=lambda: len(frames_read) >= 10)

    def counted(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            frames_read.append(1)
            yield frame

    clip = replace(clip, frames=counted(clip.frames))
    with pytest.raises(GenerationCancelled, match="before frame 11"):
        encode_clip(clip, tmp_path / "video.mp4", tmp_path / "poster.jpg")
    assert len(frames_read) == 10 and list(tmp_path.iterdir()) == []


def _job(tmp_path: Path, **request: object) -> tuple[Generation, SQLiteStore]:
    store = SQLiteStore(tmp_path / "dreamreel.db")
    job = Generation.new(owner="local", dialect="luma", request=GenerationRequest(prompt="x", **request), seed=0)
    return store.create(job), store


def test_the_time_limit_grows_with_pixels_and_frames_and_the_model_allowance(tmp_path: Path) -> None:
    small, store = _job(tmp_path, resolution="540p", duration_s=5)  # 960x540 x 120 = 62.2 MPx-frames
    big, _ = _job(tmp_path, resolution="4k", duration_s=9, model="ray-flash-2")  # 3840x2160 x 216 = 1791.6
    settings = Settings(data_dir=tmp_path)
    assert job_time_limit(small, settings, store) == pytest.approx(300 + 62.208)
    assert job_time_limit(big, settings, store) == pytest.approx(300 + 1791.5904)
    tuned = Settings(data_dir=tmp_path, job_time_base_seconds=10,
                     model_seconds_per_megapixel_frame={"ray-flash-2": 0.5})
    assert job_time_limit(small, tuned, store) == pytest.approx(10 + 62.208)
    assert job_time_limit(big, tuned, store) == pytest.approx(10 + 1791.5904 * 0.5)
    fixed = Settings(data_dir=tmp_path, job_time_limit_seconds=42)
    assert job_time_limit(small, fixed, store) == job_time_limit(big, fixed, store) == 42
    assert limit_reason(1895.8) == "the job exceeded its time limit of 1896 s"
    assert limit_reason(1.4) == "the job exceeded its time limit of 1.4 s"


def test_each_fault_gets_its_code_and_a_reason_people_can_read() -> None:
    """The GPU allocator's exception type is real torch (a CPU machine cannot raise it for real; the CPU
    allocator's failure is provoked for real in tests/acceptance/test_job_faults.py)."""
    gpu = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore detail")
    assert classify(gpu) == (FailureCode.OUT_OF_MEMORY,
                             "the job ran out of memory on its worker: CUDA out of memory. Tried to allocate 20.00 GiB")
    assert classify(MemoryError("Unable to allocate 24 MiB"))[0] is FailureCode.OUT_OF_MEMORY
    assert classify(InputError("keyframes.frame0: not a usable image")) == (
        FailureCode.INPUT, "keyframes.frame0: not a usable image")
    assert classify(RuntimeError("shapes do not match")) == (
        FailureCode.INTERNAL, "generation failed: RuntimeError: shapes do not match")
