"""``seed`` and ``negative_prompt``: a caller's seed is the one stored and used, and a negative prompt reaches the
model (the clip changes with it, and is the same again without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dreamreel.core.request import GenerationRequest
from dreamreel.core.service import GenerationService
from dreamreel.engine.catalog import ModelSpec
from dreamreel.engine.registry import load_backend
from dreamreel.engine.render import render
from dreamreel.files import LocalFiles
from dreamreel.store.sqlite import SQLiteStore


def test_a_callers_seed_is_the_generations_and_others_get_one_chosen(tmp_path: Path) -> None:
    service = GenerationService(SQLiteStore(tmp_path / "jobs.db"), LocalFiles(tmp_path / "files"))
    chosen = service.submit(GenerationRequest(prompt="a kite", seed=4_000_000_000), owner="o", dialect="luma")
    assert chosen.seed == 4_000_000_000 and service.get(chosen.id, owner="o").seed == 4_000_000_000
    drawn = {service.submit(GenerationRequest(prompt="a kite"), owner="o", dialect="luma").seed for _ in range(3)}
    assert len(drawn) == 3
    with pytest.raises(ValueError, match="less than or equal"):
        GenerationRequest(prompt="a kite", seed=2**32)


def test_a_negative_prompt_reaches_the_model(tiny_model_dir: Path) -> None:
    backend = load_backend(ModelSpec("ltx-condition", tiny_model_dir))

    def frames(**extra: object) -> np.ndarray:
        request = GenerationRequest(prompt="a red ball on grass", resolution="540p", duration_s=1, **extra)
        clip = render(backend, request, seed=3, sources=None, on_step=lambda *_: None, should_cancel=lambda: False,
                      steps=2, guidance_scale=4.0)  # the tiny model's own guidance is 1.0: no negative branch
        return np.stack(list(clip.frames)).astype(np.int16)

    plain = frames()
    steered = frames(negative_prompt="blurry, dark, low quality")
    assert np.abs(plain - steered).mean() > 1.0
    assert np.array_equal(frames(), plain)
