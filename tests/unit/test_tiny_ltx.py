"""The tiny offline LTX model builds, loads through the real backend and generates deterministically."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dreamreel.engine.backends.base import GenerationCancelled
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import NativeGrid, Plan
from dreamreel.engine.tiny_model import build_tiny_ltx


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"), seed=0)


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> LTXConditionBackend:
    return LTXConditionBackend(model_dir)


def _plan(backend: LTXConditionBackend, seed: int = 7, steps: int = 3) -> Plan:
    grid = backend.native_grid()
    height = grid.short_side
    width = 2 * grid.short_side  # 16:9 rounded to the size multiple: 64x114 -> 64x128
    frames = 2 * grid.frame_multiple + 1
    return Plan(
        prompt="A red ball rolls from left to right on a wooden table. The camera is static.",
        seed=seed,
        native_width=width,
        native_height=height,
        native_frames=frames,
        native_fps=grid.fps,
        output_width=width,
        output_height=height,
        output_frames=frames,
        output_fps=grid.fps,
        num_inference_steps=steps,
        guidance_scale=backend.default_guidance,
    )


def _run(backend: LTXConditionBackend, plan: Plan) -> tuple[np.ndarray, list[tuple[int, int]]]:
    steps: list[tuple[int, int]] = []
    frames = backend.generate(plan, lambda done, total: steps.append((done, total)), lambda: False)
    return frames, steps


def test_build_writes_small_loadable_model(model_dir: Path) -> None:
    settings = json.loads((model_dir / "dreamreel.json").read_text())
    assert settings["family"] == "ltx-condition"
    for component in ("vae", "transformer", "text_encoder", "tokenizer", "scheduler"):
        assert (model_dir / component).is_dir()
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    assert size < 5_000_000


def test_same_seed_builds_same_weights(model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_ltx(tmp_path / "again", seed=0)
    for rel in ("transformer/diffusion_pytorch_model.safetensors", "tokenizer/tokenizer.json"):
        assert (again / rel).read_bytes() == (model_dir / rel).read_bytes()


def test_native_grid(backend: LTXConditionBackend) -> None:
    assert backend.name == "ltx-condition"
    assert backend.native_grid() == NativeGrid(
        short_side=64, size_multiple=32, frame_multiple=8, fps=8, max_frames=257
    )
    assert (backend.default_steps, backend.default_guidance) == (8, 1.0)


def test_generate_shape_progress_and_determinism(backend: LTXConditionBackend) -> None:
    plan = _plan(backend, seed=7)
    frames, steps = _run(backend, plan)
    assert frames.shape == (plan.native_frames, plan.native_height, plan.native_width, 3)
    assert frames.dtype == np.uint8
    assert steps == [(1, 3), (2, 3), (3, 3)]

    same, _ = _run(backend, plan)
    assert np.array_equal(frames, same)

    other, _ = _run(backend, _plan(backend, seed=8))
    assert not np.array_equal(frames, other)


def test_cancel_raises(backend: LTXConditionBackend) -> None:
    steps: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        backend.generate(_plan(backend), lambda done, total: steps.append((done, total)), lambda: True)
    assert steps == []  # checked before denoising starts

    with pytest.raises(GenerationCancelled):
        backend.generate(_plan(backend), lambda done, total: steps.append((done, total)), lambda: bool(steps))
    assert steps == [(1, 3)]  # stopped right after the step that saw the cancel


def test_rejects_off_grid_plan(backend: LTXConditionBackend) -> None:
    with pytest.raises(ValueError):
        backend.generate(replace(_plan(backend), native_frames=20), lambda d, t: None, lambda: False)
    with pytest.raises(ValueError):
        backend.generate(replace(_plan(backend), native_width=100), lambda d, t: None, lambda: False)


def test_a_model_whose_end_keyframes_do_not_land_fades_its_image_loops(model_dir: Path, tmp_path: Path) -> None:
    """``loop_on_image: fade`` in dreamreel.json: a loop on a start image conditions frame 0 only and dissolves
    back into it, instead of asking the model to land its last frame on the image."""
    import base64
    import io
    import shutil

    from PIL import Image

    from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
    from dreamreel.engine.inputs import ImageSources
    from dreamreel.engine.render import render
    from dreamreel.media.encode import encode_clip

    fading = shutil.copytree(model_dir, tmp_path / "fading")
    settings = json.loads((fading / "dreamreel.json").read_text())
    (fading / "dreamreel.json").write_text(json.dumps({**settings, "loop_on_image": "fade"}))
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    request = GenerationRequest(prompt="a red ball", loop=True, resolution="540p",
                                keyframes=Keyframes(frame0=ImageKeyframe(url=url)))
    plans = {}
    for name, directory in (("keyframe", model_dir), ("fade", fading)):
        backend = LTXConditionBackend(directory)
        assert backend.loop_on_image == name
        clip = render(backend, request, seed=1, sources=ImageSources(), on_step=lambda d, t: None,
                      should_cancel=lambda: False, steps=1)
        encode_clip(clip, tmp_path / f"{name}.mp4")
        plans[name] = clip.plan
    last = plans["keyframe"].native_frames - 1
    assert [c.frame_index for c in plans["keyframe"].conditions] == [0, last]
    assert [c.frame_index for c in plans["fade"].conditions] == [0] and plans["fade"].loop_fade_to_start
