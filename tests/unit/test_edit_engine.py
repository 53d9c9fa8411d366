"""Video edits through the real engine on the tiny models: lengths, sizes, the hold, the window, first_frame."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dreamreel.core.request import AspectRatio, GenerationRequest, ModifyEdit, ReframeEdit, Resolution
from dreamreel.engine.backends.base import EditGuide
from dreamreel.engine.backends.common import steps_run
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.backends.wan import WanT2VBackend, WanVACEBackend
from dreamreel.engine.inputs import LocalSources
from dreamreel.engine.plan import Plan
from dreamreel.engine.render import render
from dreamreel.engine.tiny_wan import build_tiny_wan
from dreamreel.media.encode import scale_rgb
from dreamreel.media.video_source import sample_frames

STEPS = 4


def write_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> Path:
    """A moving gradient with a bright square: something a resample or a paste would visibly get wrong."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"}
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(frames):
            frame = np.stack([(xs * 255 // width), (ys * 255 // height), np.full_like(xs, 60)], -1).astype(np.uint8)
            x = (index * 3) % (width - 16)
            frame[8:24, x : x + 16] = (250, 250, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def ltx(tiny_model_dir: Path) -> LTXConditionBackend:
    return LTXConditionBackend(tiny_model_dir)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("edit") / "source.mp4", 256, 144, 30)


def _render(backend, request: GenerationRequest, seed: int = 3) -> tuple[list[np.ndarray], list, Plan]:
    steps: list[tuple[int, int]] = []
    clip = render(backend, request, seed=seed, sources=LocalSources(), on_step=lambda d, t: steps.append((d, t)),
                  should_cancel=lambda: False, steps=STEPS)
    frames = list(clip.frames)
    assert len(frames) == clip.total
    return frames, steps, clip.plan


def _modify(source: Path, **edit) -> GenerationRequest:
    return GenerationRequest(prompt="a yellow square moves right", resolution=Resolution.P540,
                             edit=ModifyEdit(source=str(source), **edit))


def test_modify_keeps_aspect_and_length_and_runs_its_share_of_steps(ltx, source: Path) -> None:
    frames, steps, plan = _render(ltx, _modify(source, mode="adhere_1"))
    assert (plan.output_width, plan.output_height) == (960, 540)  # 16:9 source, 144 px -> the 540p class
    assert plan.output_frames == len(frames) == 30  # 1.25 s at 24 fps
    assert steps[-1] == (steps_run(STEPS, ltx.modify_strengths[0]),) * 2
    _, free_steps, _ = _render(ltx, _modify(source, mode="reimagine_3"))
    assert free_steps[-1][1] > steps[-1][1]


def test_reframe_delivers_the_source_inside_its_window(ltx, source: Path) -> None:
    request = GenerationRequest(prompt="", aspect_ratio=AspectRatio.SQUARE, resolution=Resolution.P540,
                                edit=ReframeEdit(source=str(source)))
    frames, steps, plan = _render(ltx, request)
    assert (plan.output_width, plan.output_height) == (540, 540) and len(frames) == 30
    assert frames[0].shape == (540, 540, 3)
    assert steps[-1] == (STEPS, STEPS)
    window = sample_frames(source, 30, 540, 304)  # 16:9 at the largest fit: centred, rows 118..422
    for frame, inside in zip(frames, window, strict=True):
        assert np.array_equal(frame[118:422], inside)
    edge_padded = np.repeat(window[:, :1], 118, axis=1)
    assert np.abs(np.stack(frames)[:, :118].astype(int) - edge_padded).mean() > 1  # the outside is generated


@pytest.mark.parametrize("backend_name", ["ltx", "wan-t2v"])
def test_the_hold_pins_the_latents_to_the_source(backend_name: str, ltx, tmp_path_factory) -> None:
    """Held everywhere, the output no longer depends on the seed's noise; held nowhere, it does."""
    if backend_name == "ltx":
        backend = ltx
    else:
        backend = WanT2VBackend(build_tiny_wan(tmp_path_factory.mktemp("t2v"), "wan-t2v", seed=0))
    grid = backend.native_grid()
    height, width = grid.short_side, 2 * grid.short_side
    frames = grid.frame_multiple + 1
    canvas = np.random.default_rng(0).integers(0, 255, (frames, height, width, 3), dtype=np.uint8)

    def run(seed: int, mask: float) -> np.ndarray:
        plan = Plan(prompt="a ball", seed=seed, native_width=width, native_height=height, native_frames=frames,
                    native_fps=grid.fps, output_width=width, output_height=height, output_frames=frames,
                    output_fps=grid.fps, num_inference_steps=STEPS, guidance_scale=backend.default_guidance)
        guide = EditGuide(frames=canvas, mask=np.full((height, width), mask, np.float32))
        return backend.generate(plan, lambda *_: None, lambda: False, guide=guide)

    def apart(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(int) - b.astype(int)).mean())

    held, free = apart(run(1, 1.0), run(2, 1.0)), apart(run(1, 0.0), run(2, 0.0))
    assert held < 1.0 < free / 10  # held: only the VAE decode's own seeded noise differs


def test_first_frame_starts_the_modified_clip(ltx, source: Path) -> None:
    picture = Image.new("RGB", (160, 90), (30, 200, 90))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    frames, _, _ = _render(ltx, _modify(source, mode="flex_2", first_frame=uri))
    assert np.abs(frames[0].astype(int) - (30, 200, 90)).max() <= 2


def test_vace_reframes_with_its_own_mask(tmp_path_factory, tiny_wan_model_dir: Path, source: Path) -> None:
    backend = WanVACEBackend(tiny_wan_model_dir)
    request = GenerationRequest(prompt="", aspect_ratio=AspectRatio.PORTRAIT, resolution=Resolution.P540,
                                edit=ReframeEdit(source=str(source)))
    frames, _, plan = _render(backend, request)
    assert (plan.output_width, plan.output_height) == (540, 960) and len(frames) == 30


def test_a_modify_keeps_the_sources_detail_as_far_as_its_mode_says(ltx, source: Path) -> None:
    """The tiny model's VAE is random, so its copy of the source is noise: adhere_1 must still deliver the source
    (the model's change, not its copy, is what arrives), reimagine_3 the model's frames alone."""
    truth = sample_frames(source, 30, 960, 540).astype(int)
    close, _, _ = _render(ltx, _modify(source, mode="adhere_1"))
    free, _, _ = _render(ltx, _modify(source, mode="reimagine_3"))
    free = [scale_rgb(frame, 960, 540) for frame in free]  # left at the native size for the encoder to scale
    assert np.abs(np.stack(close) - truth).mean() < np.abs(np.stack(free).astype(int) - truth).mean() / 3
