"""The lab's guidance interval (``dreamreel-lab eval --guidance-min-sigma``) switches guidance off between steps,
through the service backend's ``on_step``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import Plan
from dreamreel.engine.tiny_model import build_tiny_ltx
from dreamreel_lab.training.sampler import UNGUIDED, guidance_interval


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> LTXConditionBackend:
    model_dir: Path = build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"), seed=0)
    return LTXConditionBackend(model_dir)


def _plan(backend: LTXConditionBackend, steps: int = 3) -> Plan:
    grid = backend.native_grid()
    width, height, frames = 2 * grid.short_side, grid.short_side, 2 * grid.frame_multiple + 1
    return Plan(
        prompt="A red ball rolls from left to right on a wooden table. The camera is static.",
        seed=7, native_width=width, native_height=height, native_frames=frames, native_fps=grid.fps,
        output_width=width, output_height=height, output_frames=frames, output_fps=grid.fps,
        num_inference_steps=steps, guidance_scale=4.0,
    )


def test_guidance_interval_guides_only_the_high_noise_steps(backend: LTXConditionBackend) -> None:
    """``min_sigma`` switches guidance off, between steps, once sigma falls below it; 0 changes nothing."""
    plan = _plan(backend, steps=3)
    scales: list[float] = []
    hook = backend.pipe.transformer.register_forward_pre_hook(lambda *_: scales.append(backend.pipe.guidance_scale))
    try:
        full = backend.generate(plan, lambda *_: None, lambda: False)  # the service: every step guided
        sigmas = [float(t) / 1000 for t in backend.pipe.scheduler.timesteps]
        steps: list[tuple[int, int]] = []
        on_step = guidance_interval(backend, plan, (sigmas[1] + sigmas[2]) / 2,
                                    lambda done, total: steps.append((done, total)))
        limited = backend.generate(plan, on_step, lambda: False)
        every = backend.generate(plan, guidance_interval(backend, plan, 0.0), lambda: False)
    finally:
        hook.remove()
    assert scales == [4.0, 4.0, 4.0, 4.0, 4.0, UNGUIDED, 4.0, 4.0, 4.0]
    assert steps == [(1, 3), (2, 3), (3, 3)]  # the caller's own on_step still runs
    assert not np.array_equal(full, limited)  # the last step ran on the conditional prediction alone
    assert np.array_equal(full, every)
