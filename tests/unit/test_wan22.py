"""The Wan 2.2 families on tiny models built from the real checkpoints' configs: every control each family
supports, rendered through the engine (``render`` -> the backend), at the planned native size and frame count;
what each cannot do refused at submission and by the backend; the two experts, ``expand_timesteps`` and the
published defaults."""

from __future__ import annotations

import base64
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import RecordingSink

from dreamreel.core.capabilities import FAMILY_CONTROLS, check_supported, pins_last_frame
from dreamreel.core.conditioning import Control
from dreamreel.core.errors import NotSupported
from dreamreel.core.request import (
    GenerationKeyframe,
    GenerationRequest,
    ImageKeyframe,
    Keyframes,
    ModifyEdit,
    ReframeEdit,
)
from dreamreel.engine.backends.wan import WanA14BI2VBackend, WanA14BT2VBackend, WanBackend, WanTI2VBackend
from dreamreel.engine.inputs import LocalSources
from dreamreel.engine.plan import Condition, Plan
from dreamreel.engine.registry import ModelSpec, load_backend
from dreamreel.engine.render import RenderedClip, render
from dreamreel.engine.tiny_real import FAMILY_CONFIGS, build_from_real_config

STEPS = 2
SIZE = (224, 128)
"""Delivered size of every clip here (the smallest explicit size a request may ask for)."""
PROMPT = "a red ball rolls from left to right"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wan22")
    return {family: build_from_real_config(name, root / name) for family, name in FAMILY_CONFIGS.items()}


@pytest.fixture(scope="module")
def backends(model_dirs: dict[str, Path]) -> dict[str, WanBackend]:
    return {family: load_backend(ModelSpec(family=family, path=path))  # type: ignore[misc]
            for family, path in model_dirs.items()}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s source clip for the edits: a moving bright square on a gradient."""
    path = tmp_path_factory.mktemp("wan22-source") / "source.mp4"
    width, height = SIZE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(24):
            frame = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 60)], -1).astype(np.uint8)
            frame[16:48, 4 * index : 4 * index + 32] = (250, 250, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _image(colour: tuple[int, int, int]) -> str:
    picture = np.empty((SIZE[1], SIZE[0], 3), dtype=np.uint8)
    picture[...] = colour
    picture[: SIZE[1] // 2, : SIZE[0] // 2] = 20  # a dark block, so it is not flat
    png = io.BytesIO()
    Image.fromarray(picture).save(png, "PNG")
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()


RED, BLUE = _image((200, 40, 40)), _image((40, 40, 200))


class NativeFrames:
    """A real backend, keeping what each ``generate`` returned: the native frames ``render`` then delivers."""

    def __init__(self, backend: WanBackend) -> None:
        self.backend = backend
        self.native: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        frames = self.backend.generate(*args, **kwargs)
        self.native.append(frames)
        return frames


def _render(backend: WanBackend, seed: int = 3, **fields: Any) -> tuple[RenderedClip, np.ndarray]:
    """Render a 1 s request of :data:`SIZE`; check the native frames and the delivered ones; return both."""
    request = GenerationRequest(prompt=PROMPT, size=SIZE, duration_s=1, **fields)
    recorder = NativeFrames(backend)
    steps: list[tuple[int, int]] = []
    clip = render(recorder, request, seed=seed, sources=LocalSources(),  # type: ignore[arg-type]
                  on_step=lambda done, total: steps.append((done, total)), should_cancel=lambda: False, steps=STEPS)
    delivered = list(clip.frames)
    plan = clip.plan
    (native,) = recorder.native
    assert native.shape == (plan.native_frames, plan.native_height, plan.native_width, 3)
    assert plan.native_frames == backend.native_grid().max_frames  # 1 s at 16 or 24 fps: past the tiny cap
    grid = backend.native_grid()
    assert (plan.native_width % grid.size_multiple, plan.native_height) == (0, grid.short_side)
    assert len(delivered) == clip.total == 24 and (clip.width, clip.height) == SIZE
    assert steps[-1] == (STEPS, STEPS)
    return clip, native


def _start(url: str = RED, **keyframes: Any) -> dict[str, Any]:
    return {"keyframes": Keyframes(frame0=ImageKeyframe(url=url), **keyframes)}


def test_the_family_table() -> None:
    """What each family does, as ``core.capabilities`` tells the API (a 422 at submission otherwise)."""
    edits = {Control.MODIFY, Control.REFRAME}
    assert FAMILY_CONTROLS["wan22-ti2v"] == {Control.START_IMAGE, Control.LOOP} | edits
    assert FAMILY_CONTROLS["wan22-t2v"] == {Control.LOOP} | edits
    assert FAMILY_CONTROLS["wan22-i2v"] == {Control.START_IMAGE, Control.END_IMAGE, Control.LOOP} | edits
    assert pins_last_frame("wan22-i2v") and not pins_last_frame("wan22-ti2v")
    families = {"ti2v": "wan22-ti2v", "t2v": "wan22-t2v", "i2v": "wan22-i2v"}

    def refused(model: str, field: str, **request: Any) -> None:
        with pytest.raises(NotSupported) as caught:
            check_supported(GenerationRequest(prompt=PROMPT, model=model, **request), families)
        assert caught.value.field == field, caught.value

    end_only = Keyframes(frame1=ImageKeyframe(url=RED))
    refused("ti2v", "keyframes.frame1", keyframes=Keyframes(frame0=ImageKeyframe(url=RED), frame1=end_only.frame1))
    refused("t2v", "keyframes.frame0", **_start())
    refused("i2v", "keyframes.frame0", keyframes=end_only)  # no start image: the pipeline cannot begin
    refused("i2v", "keyframes.frame0")
    for model in families:
        refused(model, "keyframes.frame0", keyframes=Keyframes(frame0=GenerationKeyframe(id="0" * 32)))
    check_supported(GenerationRequest(prompt=PROMPT, model="ti2v", loop=True, **_start()), families)
    check_supported(GenerationRequest(prompt=PROMPT, model="i2v", **_start(frame1=ImageKeyframe(url=BLUE))),
                    families)


def test_the_real_shapes_and_the_published_defaults(backends: dict[str, WanBackend], model_dirs: dict[str, Path],
                                                    tmp_path: Path) -> None:
    ti2v, t2v, i2v = backends["wan22-ti2v"], backends["wan22-t2v"], backends["wan22-i2v"]
    assert isinstance(ti2v, WanTI2VBackend) and isinstance(t2v, WanA14BT2VBackend)
    assert isinstance(i2v, WanA14BI2VBackend)
    assert (ti2v.native_grid().size_multiple, ti2v.native_grid().fps) == (32, 24)  # 16x VAE x 2x2 patch
    assert ti2v.pipe.vae.config.z_dim == ti2v.pipe.transformer.config.in_channels == 48
    assert ti2v.image_pipe.config.expand_timesteps and ti2v.image_pipe.transformer is ti2v.pipe.transformer
    for backend in (t2v, i2v):
        assert (backend.native_grid().size_multiple, backend.native_grid().fps) == (16, 16)
        assert backend.pipe.transformer_2 is not None and backend.pipe.transformer_2 is not backend.pipe.transformer
    assert (t2v.pipe.config.boundary_ratio, i2v.pipe.config.boundary_ratio) == (0.875, 0.9)

    expected = {"wan22-ti2v": (704, 24, 121, 50, 5.0), "wan22-t2v": (720, 16, 81, 40, 4.0),
                "wan22-i2v": (720, 16, 81, 40, 3.5)}
    for family, (short_side, fps, max_frames, steps, guidance) in expected.items():
        bare = shutil.copytree(model_dirs[family], tmp_path / family)
        (bare / "dreamreel.json").write_text(json.dumps({"family": family}))
        backend = load_backend(ModelSpec(family=family, path=bare))
        grid = backend.native_grid()
        assert (grid.short_side, grid.fps, grid.max_frames) == (short_side, fps, max_frames), family
        assert (backend.default_steps, backend.default_guidance) == (steps, guidance), family


def test_checkpoints_of_another_family_are_refused_at_load(model_dirs: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="two experts"):
        load_backend(ModelSpec(family="wan22-t2v", path=model_dirs["wan22-ti2v"]))
    with pytest.raises(ValueError, match="not a Wan 2.2 TI2V-5B checkpoint"):
        load_backend(ModelSpec(family="wan22-ti2v", path=model_dirs["wan22-t2v"]))
    with pytest.raises(ValueError, match="in_channels 16 is not wan22-i2v's 36"):
        load_backend(ModelSpec(family="wan22-i2v", path=model_dirs["wan22-t2v"]))


def test_ti2v_text_to_video(backends: dict[str, WanBackend]) -> None:
    clip, native = _render(backends["wan22-ti2v"])
    assert clip.plan.conditions == () and (clip.plan.native_width, clip.plan.native_frames) == (64, 9)
    assert native.std() > 5, "one flat colour"


def test_ti2v_start_image_is_the_first_frame(backends: dict[str, WanBackend]) -> None:
    """``expand_timesteps`` replaces latent frame 0 by the image's latents: the clip's first frame is the image
    as the VAE renders it, exactly; so is the first frame of every preview."""
    backend = backends["wan22-ti2v"]
    assert isinstance(backend, WanTI2VBackend)
    clip, native = _render(backend, **_start())
    plan = clip.plan
    assert plan.conditions == (Condition("frame0", "image", 0),)
    image = LocalSources().image(GenerationRequest(prompt=PROMPT, **_start()), "frame0", plan.native_width,
                                 plan.native_height)
    copy = backend.round_trip(np.repeat(image[None], 5, axis=0))[0]
    assert np.abs(native[0].astype(int) - copy.astype(int)).max() <= 2

    sink = RecordingSink()
    backend.generate(replace(plan, num_inference_steps=3), lambda d, t: None, lambda: False, [image[None]],
                     preview=sink)
    assert len(sink.frames) == 2 and np.abs(sink.frames[0][0].astype(int) - copy.astype(int)).max() <= 2


def test_ti2v_loops(backends: dict[str, WanBackend]) -> None:
    """Without an image the tail is cross-faded into the head; on a start image (no last frame to pin) the
    last frames dissolve into the first."""
    plain, _ = _render(backends["wan22-ti2v"], loop=True)
    assert plain.loop and plain.plan.loop_blend > 0 and not plain.plan.loop_fade_to_start
    on_image, _ = _render(backends["wan22-ti2v"], loop=True, **_start())
    assert on_image.plan.loop_fade_to_start and len(on_image.plan.conditions) == 1


def test_ti2v_refuses_an_end_image(backends: dict[str, WanBackend]) -> None:
    backend = backends["wan22-ti2v"]
    grid = backend.native_grid()
    plan = Plan(prompt=PROMPT, seed=0, native_width=64, native_height=32, native_frames=grid.max_frames,
                native_fps=24, output_width=224, output_height=128, output_frames=24, output_fps=24,
                num_inference_steps=1, guidance_scale=1.0,
                conditions=(Condition("frame0", "image", 0), Condition("frame1", "image", grid.max_frames - 1)))
    pixels = [np.zeros((1, 32, 64, 3), dtype=np.uint8)] * 2
    with pytest.raises(ValueError, match="start image only"):
        backend.generate(plan, lambda d, t: None, lambda: False, pixels)


class Calls:
    """Counts the forward calls of a module (a hook on the real module)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.count = 0
        self._handle = module.register_forward_hook(lambda *args: setattr(self, "count", self.count + 1))

    def close(self) -> None:
        self._handle.remove()


def test_a14b_text_to_video_runs_both_experts(backends: dict[str, WanBackend]) -> None:
    """Two steps: the first above the 0.875 boundary (the high-noise expert), the second below it."""
    backend = backends["wan22-t2v"]
    high, low = Calls(backend.pipe.transformer), Calls(backend.pipe.transformer_2)
    try:
        clip, _ = _render(backend)
    finally:
        high.close()
        low.close()
    assert clip.plan.conditions == () and (high.count, low.count) == (1, 1)
    plan = replace(clip.plan, guidance_scale=4.0)
    assert backend.pipeline_inputs(plan, []) == {"guidance_scale_2": 3.0}  # published: 4.0 high, 3.0 low


def test_a14b_text_to_video_loops(backends: dict[str, WanBackend]) -> None:
    clip, _ = _render(backends["wan22-t2v"], loop=True)
    assert clip.plan.loop_blend > 0


def test_a14b_image_to_video_start_image(backends: dict[str, WanBackend]) -> None:
    backend = backends["wan22-i2v"]
    clip, red = _render(backend, **_start())
    assert clip.plan.conditions == (Condition("frame0", "image", 0),)
    _, blue = _render(backend, **_start(BLUE))
    assert not np.array_equal(red, blue)
    plan = replace(clip.plan, guidance_scale=3.5)
    image = np.zeros((1, plan.native_height, plan.native_width, 3), np.uint8)
    assert backend.pipeline_inputs(plan, [image])["guidance_scale_2"] == 3.5  # published: 3.5 for both experts


def test_a14b_image_to_video_start_and_end_images(backends: dict[str, WanBackend]) -> None:
    """The end image reaches the model as ``last_image``: same start, another end, another clip."""
    backend = backends["wan22-i2v"]
    clip, to_blue = _render(backend, **_start(frame1=ImageKeyframe(url=BLUE)))
    last = clip.plan.native_frames - 1
    assert [(c.slot, c.frame_index) for c in clip.plan.conditions] == [("frame0", 0), ("frame1", last)]
    _, to_red = _render(backend, **_start(frame1=ImageKeyframe(url=RED)))
    assert not np.array_equal(to_blue, to_red)


def test_a14b_image_to_video_closes_a_loop_on_the_start_image(backends: dict[str, WanBackend]) -> None:
    clip, _ = _render(backends["wan22-i2v"], loop=True, **_start())
    last = clip.plan.native_frames - 1
    assert [c.frame_index for c in clip.plan.conditions] == [0, last] and clip.plan.loop_blend == 0


@pytest.mark.parametrize("family", list(FAMILY_CONFIGS))
@pytest.mark.parametrize("edit", ["modify", "reframe"])
def test_edits(family: str, edit: str, backends: dict[str, WanBackend], source: Path) -> None:
    """Modify and reframe hold the (two-expert, or 48-channel) latents to the source's: the same hold as every
    Wan family's, on the real latent shapes."""
    made = (ModifyEdit(source=str(source), mode="reimagine_3") if edit == "modify"
            else ReframeEdit(source=str(source)))
    backend = backends[family]
    request = GenerationRequest(prompt=PROMPT, size=SIZE, edit=made)
    recorder = NativeFrames(backend)
    clip = render(recorder, request, seed=3, sources=LocalSources(),  # type: ignore[arg-type]
                  on_step=lambda d, t: None, should_cancel=lambda: False, steps=STEPS)
    delivered = list(clip.frames)
    plan = clip.plan
    (native,) = recorder.native
    assert native.shape == (plan.native_frames, plan.native_height, plan.native_width, 3)
    assert plan.native_height == backend.native_grid().short_side
    assert len(delivered) == clip.total == 24 and clip.height == 540  # the source's resolution class
    # The image families start from the source's own first frame (they cannot start without one).
    assert [c.frame_index for c in plan.conditions] == ([0] if family == "wan22-i2v" else [])
