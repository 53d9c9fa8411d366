"""The tiny offline Wan VACE model builds, is picked by the registry from its dreamreel.json, loads through
the real ``wan-vace`` backend and generates deterministically from a planned start image."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import RecordingSink

from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.backends.base import GenerationCancelled
from dreamreel.engine.backends.wan import WanVACEBackend
from dreamreel.engine.catalog import ModelSpec, embedded_catalog
from dreamreel.engine.plan import NativeGrid, Plan, plan_generation
from dreamreel.engine.registry import load_backend
from dreamreel.engine.tiny_wan import build_tiny_wan

STEPS = 2


@pytest.fixture(scope="module")
def backend(tiny_wan_model_dir: Path) -> WanVACEBackend:
    loaded = load_backend(ModelSpec(family="wan-vace", path=tiny_wan_model_dir))
    assert isinstance(loaded, WanVACEBackend)
    return loaded


def _start_image_plan(backend: WanVACEBackend, seed: int = 7) -> Plan:
    """A planned 1 s image-to-video clip: 17 native frames of 64x32, the image at frame 0."""
    request = GenerationRequest(prompt="A red ball rolls from left to right on a wooden table.", duration_s=5,
                                keyframes=Keyframes(frame0=ImageKeyframe(url="data:image/png;base64,AA==")))
    plan = plan_generation(request, backend.native_grid(), seed=seed, steps=STEPS, guidance_scale=1.0)
    return replace(plan, native_frames=17)


def _image(plan: Plan, colour: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((1, plan.native_height, plan.native_width, 3), dtype=np.uint8)
    image[...] = colour
    image[:, : plan.native_height // 2, : plan.native_width // 2] = 20  # a dark block, so it is not flat
    return image


def _run(backend: WanVACEBackend, plan: Plan, image: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    steps: list[tuple[int, int]] = []
    frames = backend.generate(plan, lambda done, total: steps.append((done, total)), lambda: False, [image])
    return frames, steps


def test_build_writes_small_loadable_model(tiny_wan_model_dir: Path) -> None:
    settings = json.loads((tiny_wan_model_dir / "dreamreel.json").read_text())
    assert settings["family"] == "wan-vace"
    for component in ("vae", "transformer", "text_encoder", "tokenizer", "scheduler"):
        assert (tiny_wan_model_dir / component).is_dir()
    size = sum(f.stat().st_size for f in tiny_wan_model_dir.rglob("*") if f.is_file())
    assert size < 5_000_000


def test_same_seed_builds_same_weights(tiny_wan_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_wan(tmp_path / "again", "wan-vace", seed=0)
    for rel in ("transformer/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                "tokenizer/tokenizer.json"):
        assert (again / rel).read_bytes() == (tiny_wan_model_dir / rel).read_bytes(), rel


def test_registry_reads_the_family_from_dreamreel_json(tiny_wan_model_dir: Path, tmp_path: Path) -> None:
    catalog = embedded_catalog(tiny_wan_model_dir)
    assert catalog.families == {"ray-2": "wan-vace", "ray-flash-2": "wan-vace"}
    assert catalog.entry("ray-2").path == tiny_wan_model_dir
    # A checkpoint without dreamreel.json (a plain LTX-Video export) stays ltx-condition.
    assert embedded_catalog(tmp_path).entry("ray-2").family == "ltx-condition"
    (tmp_path / "dreamreel.json").write_text(json.dumps({"family": 3}))
    with pytest.raises(ValueError, match="family"):
        embedded_catalog(tmp_path)


def test_native_grid(backend: WanVACEBackend) -> None:
    assert backend.name == "wan-vace"
    assert backend.native_grid() == NativeGrid(short_side=32, size_multiple=16, frame_multiple=4, fps=16,
                                               max_frames=33)
    assert (backend.default_steps, backend.default_guidance) == (4, 1.0)


def test_generate_shape_progress_and_determinism(backend: WanVACEBackend) -> None:
    plan = _start_image_plan(backend, seed=7)
    assert (plan.native_width, plan.native_height, plan.native_frames) == (64, 32, 17)
    image = _image(plan, (200, 40, 40))
    frames, steps = _run(backend, plan, image)
    assert frames.shape == (17, 32, 64, 3)
    assert frames.dtype == np.uint8
    assert steps == [(1, STEPS), (2, STEPS)]

    same, _ = _run(backend, plan, image)
    assert np.array_equal(frames, same)

    other_seed, _ = _run(backend, _start_image_plan(backend, seed=8), image)
    assert not np.array_equal(frames, other_seed)
    # The condition reaches the model: another start image, same seed, another clip.
    other_image, _ = _run(backend, plan, _image(plan, (40, 40, 200)))
    assert not np.array_equal(frames, other_image)


def test_preview_gets_native_size_frames_before_the_last_step(backend: WanVACEBackend) -> None:
    plan = replace(_start_image_plan(backend), num_inference_steps=3)
    sink = RecordingSink()
    backend.generate(plan, lambda d, t: None, lambda: False, [_image(plan, (200, 40, 40))], preview=sink)
    assert sink.asked == [(1, 3), (2, 3)]  # never after the last step: the real clip is about to exist
    assert [(f.shape, f.dtype) for f in sink.frames] == [((17, 32, 64, 3), np.uint8)] * 2
    assert not np.array_equal(sink.frames[0], sink.frames[1])  # the latents moved between steps


def test_cancel_raises(backend: WanVACEBackend) -> None:
    plan = _start_image_plan(backend)
    image = _image(plan, (200, 40, 40))
    steps: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        backend.generate(plan, lambda done, total: steps.append((done, total)), lambda: True, [image])
    assert steps == []  # checked before denoising starts

    with pytest.raises(GenerationCancelled):
        backend.generate(plan, lambda done, total: steps.append((done, total)), lambda: bool(steps), [image])
    assert steps == [(1, STEPS)]  # stopped right after the step that saw the cancel


def test_rejects_off_grid_plans_and_bad_pixels(backend: WanVACEBackend) -> None:
    plan = _start_image_plan(backend)
    image = _image(plan, (200, 40, 40))

    def generate(p: Plan, pixels: list[np.ndarray]) -> None:
        backend.generate(p, lambda d, t: None, lambda: False, pixels)

    with pytest.raises(ValueError, match="native_frames"):
        generate(replace(plan, native_frames=18), [image])  # not 4k+1
    with pytest.raises(ValueError, match="native_frames"):
        generate(replace(plan, native_frames=37), [image])  # past max_frames
    with pytest.raises(ValueError, match="multiple of 16"):
        generate(replace(plan, native_width=72), [image])
    with pytest.raises(ValueError, match="expected"):
        generate(plan, [image[:, :, :32]])
    with pytest.raises(ValueError, match="conditions"):
        generate(plan, [])
