"""The tiny offline Wan text-to-video, image-to-video and first-last-frame models build, load through their
real backends (picked by the registry from dreamreel.json) and generate; the images a plan carries reach
the pipeline, and each backend refuses plans and checkpoints it cannot honour."""

from __future__ import annotations

import base64
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import RecordingSink

from dreamreel.core.capabilities import pins_last_frame
from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.backends.base import Backend, GenerationCancelled
from dreamreel.engine.backends.wan import WanBackend, first_last_images
from dreamreel.engine.inputs import ImageSources
from dreamreel.engine.plan import Condition, NativeGrid, Plan, plan_generation
from dreamreel.engine.registry import ModelSpec, load_backend
from dreamreel.engine.render import render
from dreamreel.engine.tiny_wan import CLIP_IMAGE_SIZE, build_tiny_wan
from dreamreel.media.encode import encode_clip

STEPS = 2
IMG = ImageKeyframe(url="data:image/png;base64,AA==")
MODELS = {"t2v": ("wan-t2v", None), "i2v": ("wan-i2v", None), "i2v-clip": ("wan-i2v", True),
          "flf2v": ("wan-flf2v", None)}
"""Tiny models built once for the module: name -> (family, image_encoder); ``i2v`` is Wan 2.2's layout (no
image encoder), ``i2v-clip`` Wan 2.1 I2V's, ``flf2v`` Wan 2.1 FLF2V's (CLIP features of two images)."""


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wan-families")
    return {name: build_tiny_wan(root / name, family, seed=0, image_encoder=encoder)
            for name, (family, encoder) in MODELS.items()}


@pytest.fixture(scope="module")
def backends(model_dirs: dict[str, Path]) -> dict[str, WanBackend]:
    loaded = {name: load_backend(ModelSpec(family=MODELS[name][0], path=path)) for name, path in model_dirs.items()}
    assert all(isinstance(backend, WanBackend) for backend in loaded.values())
    return loaded  # type: ignore[return-value]


def _plan(backend: Backend, seed: int = 7, **request: object) -> Plan:
    """A planned clip cut to 17 native frames of 64x32 (the planner's conditions moved to the new end)."""
    plan = plan_generation(GenerationRequest(prompt="a red ball rolls from left to right", **request),
                           backend.native_grid(), seed=seed, steps=STEPS, guidance_scale=1.0)
    last = plan.native_frames - 1
    conditions = tuple(replace(c, frame_index=16) if c.frame_index == last else c for c in plan.conditions)
    return replace(plan, native_frames=17, conditions=conditions, loop_blend=0)


def _image(colour: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((1, 32, 64, 3), dtype=np.uint8)
    image[...] = colour
    image[:, :16, :32] = 20  # a dark block, so it is not flat
    return image


RED, BLUE, GREEN = _image((200, 40, 40)), _image((40, 40, 200)), _image((40, 200, 40))


def _run(backend: Backend, plan: Plan, pixels: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    steps: list[tuple[int, int]] = []
    frames = backend.generate(plan, lambda done, total: steps.append((done, total)), lambda: False, pixels)
    return frames, steps


class ImagesEmbedded:
    """Counts the images the CLIP image encoder embeds per call (a forward hook on the real module)."""

    def __init__(self, backend: WanBackend) -> None:
        self.batches: list[int] = []
        self._module = backend.pipe.image_encoder

    def __enter__(self) -> ImagesEmbedded:
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
            self.batches.append(int(kwargs["pixel_values"].shape[0]))

        self._handle = self._module.register_forward_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


@pytest.mark.parametrize("name", list(MODELS))
def test_builds_a_small_model_the_registry_loads_as_its_family(
    name: str, model_dirs: dict[str, Path], backends: dict[str, WanBackend]
) -> None:
    family, encoder = MODELS[name]
    model_dir = model_dirs[name]
    assert json.loads((model_dir / "dreamreel.json").read_text())["family"] == family
    assert (model_dir / "image_encoder").is_dir() == (name in ("i2v-clip", "flf2v"))
    assert sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) < 5_000_000
    backend = backends[name]
    assert backend.name == family
    assert backend.native_grid() == NativeGrid(short_side=32, size_multiple=16, frame_multiple=4, fps=16,
                                               max_frames=33)
    assert (backend.default_steps, backend.default_guidance) == (4, 1.0)


def test_a_checkpoint_without_settings_gets_its_familys_published_size(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """Wan 2.1 FLF2V is published at 720p only; the other families fall back to Wan 2.1's 480p."""
    for name, short_side in (("flf2v", 720), ("i2v-clip", 480)):
        bare = shutil.copytree(model_dirs[name], tmp_path / name)
        settings = json.loads((bare / "dreamreel.json").read_text())
        settings.pop("short_side")
        (bare / "dreamreel.json").write_text(json.dumps(settings))
        backend = load_backend(ModelSpec(family=MODELS[name][0], path=bare))
        assert backend.native_grid().short_side == short_side, name


def test_same_seed_builds_same_weights(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    again = build_tiny_wan(tmp_path / "again", "wan-flf2v", seed=0)
    for rel in ("transformer/diffusion_pytorch_model.safetensors", "image_encoder/model.safetensors"):
        assert (again / rel).read_bytes() == (model_dirs["flf2v"] / rel).read_bytes(), rel
    other = build_tiny_wan(tmp_path / "other", "wan-flf2v", seed=1)
    rel = "transformer/diffusion_pytorch_model.safetensors"
    assert (other / rel).read_bytes() != (model_dirs["flf2v"] / rel).read_bytes()


def test_builder_refuses_what_no_wan_checkpoint_has(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wan-t2v takes no image encoder"):
        build_tiny_wan(tmp_path / "t2v", "wan-t2v", image_encoder=True)
    with pytest.raises(ValueError, match="ltx-condition"):
        build_tiny_wan(tmp_path / "ltx", "ltx-condition")


def test_text_to_video_shape_progress_and_determinism(backends: dict[str, WanBackend]) -> None:
    backend = backends["t2v"]
    plan = _plan(backend)
    assert plan.conditions == ()
    frames, steps = _run(backend, plan, [])
    assert (frames.shape, frames.dtype) == ((17, 32, 64, 3), np.uint8)
    assert steps == [(1, STEPS), (2, STEPS)]
    assert np.array_equal(frames, _run(backend, plan, [])[0])
    assert not np.array_equal(frames, _run(backend, replace(plan, seed=8), [])[0])
    assert not np.array_equal(frames, _run(backend, replace(plan, prompt="a blue cube"), [])[0])


def test_text_to_video_refuses_conditions(backends: dict[str, WanBackend]) -> None:
    backend = backends["t2v"]
    plan = _plan(backend, keyframes=Keyframes(frame0=IMG))
    with pytest.raises(ValueError, match="text alone"):
        _run(backend, plan, [RED])


@pytest.mark.parametrize("name", ["i2v", "i2v-clip"])
def test_the_start_image_reaches_the_image_to_video_model(name: str, backends: dict[str, WanBackend]) -> None:
    backend = backends[name]
    plan = _plan(backend, keyframes=Keyframes(frame0=IMG))
    assert plan.conditions == (Condition("frame0", "image", 0),)
    frames, steps = _run(backend, plan, [RED])
    assert (frames.shape, frames.dtype) == ((17, 32, 64, 3), np.uint8)
    assert steps == [(1, STEPS), (2, STEPS)]
    assert np.array_equal(frames, _run(backend, plan, [RED])[0])
    assert not np.array_equal(frames, _run(backend, replace(plan, seed=8), [RED])[0])
    # Same seed, another start image: another clip.
    assert not np.array_equal(frames, _run(backend, plan, [BLUE])[0])


def test_image_encoders_embed_the_start_image_or_both_ends(backends: dict[str, WanBackend]) -> None:
    """Wan 2.1 I2V embeds one image with CLIP; Wan 2.1 FLF2V embeds the first and the last frame."""
    i2v, flf2v = backends["i2v-clip"], backends["flf2v"]
    with ImagesEmbedded(i2v) as embedded:
        _run(i2v, _plan(i2v, keyframes=Keyframes(frame0=IMG)), [RED])
    assert embedded.batches == [1]
    with ImagesEmbedded(flf2v) as embedded:
        _run(flf2v, _plan(flf2v, keyframes=Keyframes(frame0=IMG, frame1=IMG)), [RED, BLUE])
    assert embedded.batches == [2]
    assert flf2v.pipe.image_processor.crop_size == {"height": CLIP_IMAGE_SIZE, "width": CLIP_IMAGE_SIZE}


def test_first_last_frame_passes_the_end_image(backends: dict[str, WanBackend]) -> None:
    backend = backends["flf2v"]
    plan = _plan(backend, keyframes=Keyframes(frame0=IMG, frame1=IMG))
    assert [(c.slot, c.frame_index) for c in plan.conditions] == [("frame0", 0), ("frame1", 16)]
    frames, steps = _run(backend, plan, [RED, BLUE])
    assert frames.shape == (17, 32, 64, 3) and steps == [(1, STEPS), (2, STEPS)]
    assert np.array_equal(frames, _run(backend, plan, [RED, BLUE])[0])
    # Same seed and first frame, another last frame: another clip.
    assert not np.array_equal(frames, _run(backend, plan, [RED, GREEN])[0])
    assert not np.array_equal(frames, _run(backend, plan, [GREEN, BLUE])[0])


def test_a_checkpoint_without_image_encoder_serves_first_last_frame_too(model_dirs: dict[str, Path]) -> None:
    """Wan 2.2 I2V's layout conditions through the latents alone, so it can also be declared wan-flf2v."""
    backend = load_backend(ModelSpec(family="wan-flf2v", path=model_dirs["i2v"]))
    plan = _plan(backend, keyframes=Keyframes(frame0=IMG, frame1=IMG))
    frames, _ = _run(backend, plan, [RED, BLUE])
    assert not np.array_equal(frames, _run(backend, plan, [RED, GREEN])[0])


def test_loop_on_a_start_image(backends: dict[str, WanBackend]) -> None:
    """First-last-frame closes the loop on the start image itself; image-to-video, which has no last frame,
    dissolves into its first frame (``render`` asks ``pins_last_frame`` of the backend's family)."""
    flf2v, i2v = backends["flf2v"], backends["i2v"]
    assert pins_last_frame(flf2v.name) and not pins_last_frame(i2v.name)
    request = GenerationRequest(prompt="a red ball", loop=True, keyframes=Keyframes(frame0=IMG))
    grid = flf2v.native_grid()
    closed = plan_generation(request, grid, seed=1, steps=STEPS, guidance_scale=1.0, pin_last_frame=True)
    faded = plan_generation(request, grid, seed=1, steps=STEPS, guidance_scale=1.0, pin_last_frame=False)
    last = closed.native_frames - 1
    assert [(c.slot, c.frame_index) for c in closed.conditions] == [("frame0", 0), ("frame0", last)]
    assert closed.loop_blend == 0
    assert faded.conditions == (Condition("frame0", "image", 0),) and faded.loop_blend > 0 and faded.drop_last
    assert faded.loop_fade_to_start and faded.native_frames == closed.native_frames  # no extra frames

    frames, _ = _run(flf2v, _plan(flf2v, loop=True, keyframes=Keyframes(frame0=IMG)), [RED, RED])
    assert frames.shape == (17, 32, 64, 3)
    frames, _ = _run(i2v, replace(faded, native_frames=17), [RED])
    assert frames.shape == (17, 32, 64, 3)


def test_image_backends_refuse_plans_they_cannot_honour(backends: dict[str, WanBackend]) -> None:
    i2v, flf2v = backends["i2v"], backends["flf2v"]
    both = _plan(flf2v, keyframes=Keyframes(frame0=IMG, frame1=IMG))
    start = _plan(i2v, keyframes=Keyframes(frame0=IMG))
    with pytest.raises(ValueError, match="wan-i2v takes no last frame"):
        _run(i2v, both, [RED, BLUE])
    with pytest.raises(ValueError, match="wan-flf2v needs a last frame"):
        _run(flf2v, start, [RED])
    end_only = replace(both, conditions=both.conditions[1:])
    with pytest.raises(ValueError, match="native frame 0"):
        _run(flf2v, end_only, [BLUE])
    with pytest.raises(ValueError, match="native frame 0"):
        _run(i2v, replace(start, conditions=()), [])
    clip = replace(start, conditions=(Condition("frame0", "video", 0, 5),))
    with pytest.raises(ValueError, match="only images"):
        _run(i2v, clip, [np.zeros((5, 32, 64, 3), dtype=np.uint8)])
    with pytest.raises(ValueError, match="expected"):
        _run(i2v, start, [RED[:, :, :32]])
    with pytest.raises(ValueError, match="native_frames"):
        _run(i2v, replace(start, native_frames=18), [RED])


def test_first_last_images_maps_the_ends() -> None:
    plan = Plan(prompt="x", seed=0, native_width=64, native_height=32, native_frames=17, native_fps=16,
                output_width=64, output_height=32, output_frames=24, output_fps=24, num_inference_steps=1,
                guidance_scale=1.0, conditions=(Condition("frame0", "image", 0), Condition("frame1", "image", 16)))
    image, last_image = first_last_images(plan, [RED, BLUE])
    assert np.array_equal(np.asarray(image), RED[0]) and np.array_equal(np.asarray(last_image), BLUE[0])
    image, last_image = first_last_images(replace(plan, conditions=plan.conditions[:1]), [RED])
    assert np.array_equal(np.asarray(image), RED[0]) and last_image is None
    middle = replace(plan, conditions=(Condition("frame0", "image", 0), Condition("frame1", "image", 8)))
    with pytest.raises(ValueError, match="only images at native frame 0 or 16"):
        first_last_images(middle, [RED, BLUE])


def test_preview_and_cancel_on_first_last_frame(backends: dict[str, WanBackend]) -> None:
    backend = backends["flf2v"]

    plan = replace(_plan(backend, keyframes=Keyframes(frame0=IMG, frame1=IMG)), num_inference_steps=3)
    sink = RecordingSink()
    backend.generate(plan, lambda d, t: None, lambda: False, [RED, BLUE], preview=sink)
    assert [(f.shape, f.dtype) for f in sink.frames] == [((17, 32, 64, 3), np.uint8)] * 2
    assert not np.array_equal(sink.frames[0], sink.frames[1])

    steps: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        backend.generate(plan, lambda d, t: steps.append((d, t)), lambda: bool(steps), [RED, BLUE])
    assert steps == [(1, 3)]


def _without_image_encoder(source: Path, target: Path) -> Path:
    """A copy of ``source`` whose model_index.json names no image encoder/processor (and without their dirs)."""
    shutil.copytree(source, target)
    index = json.loads((target / "model_index.json").read_text())
    for component in ("image_encoder", "image_processor"):
        index[component] = [None, None]
        shutil.rmtree(target / component)
    (target / "model_index.json").write_text(json.dumps(index))
    return target


def test_checkpoints_of_another_family_are_refused_at_load(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    def load(family: str, name: str | Path) -> Backend:
        path = model_dirs[name] if isinstance(name, str) else name
        return load_backend(ModelSpec(family=family, path=path))

    with pytest.raises(ValueError, match="embeds a first and a last frame .* a wan-flf2v checkpoint, not wan-i2v"):
        load("wan-i2v", "flf2v")
    with pytest.raises(ValueError, match="embeds one image .* a wan-i2v checkpoint, not wan-flf2v"):
        load("wan-flf2v", "i2v-clip")
    with pytest.raises(ValueError, match="in_channels 16 is not wan-i2v's 36"):
        load("wan-i2v", "t2v")
    with pytest.raises(ValueError, match="in_channels 36 is not wan-t2v's 16"):
        load("wan-t2v", "i2v")
    stripped = _without_image_encoder(model_dirs["flf2v"], tmp_path / "no-clip")
    with pytest.raises(ValueError, match="no image_encoder"):
        load("wan-flf2v", stripped)
    fading = shutil.copytree(model_dirs["flf2v"], tmp_path / "fading")
    settings = json.loads((fading / "dreamreel.json").read_text())
    (fading / "dreamreel.json").write_text(json.dumps({**settings, "loop_on_image": "fade"}))
    with pytest.raises(ValueError, match="loop_on_image"):
        load("wan-flf2v", fading)  # its pipeline always takes a last image, so a loop must close on one


@pytest.mark.parametrize(("name", "loop_on_image", "closed"),
                         [("i2v", "keyframe", False), ("i2v", "fade", False), ("flf2v", "keyframe", True)])
def test_render_plans_a_loop_by_the_family(
    name: str, loop_on_image: str, closed: bool, backends: dict[str, WanBackend], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``render`` tells the planner whether the backend's family can close a loop on its start image,
    and whether the model's own ``loop_on_image`` setting wants it to."""
    monkeypatch.setattr(backends[name], "loop_on_image", loop_on_image)
    png = io.BytesIO()
    Image.fromarray(RED[0]).save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    request = GenerationRequest(prompt="a red ball", loop=True, resolution="540p",
                                keyframes=Keyframes(frame0=ImageKeyframe(url=url)))
    clip = render(backends[name], request, seed=1, sources=ImageSources(), on_step=lambda d, t: None,
                  should_cancel=lambda: False, steps=1)
    video = encode_clip(clip, tmp_path / "clip.mp4").video
    last = clip.plan.native_frames - 1
    assert [c.frame_index for c in clip.plan.conditions] == ([0, last] if closed else [0])
    assert (clip.plan.loop_blend == 0) == closed and clip.plan.loop_fade_to_start == (not closed)
    assert video.width == 960 and video.duration_s == pytest.approx(5.0)
