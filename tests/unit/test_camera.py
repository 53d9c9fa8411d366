"""media/camera.py: the virtual camera's moves read back as their names, and its window never leaves
the frame; the planner gives it a concept's move only where nothing pins the clip's ends."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tests.conftest import RecordingSink

from dreamreel.core.concepts import CONCEPTS
from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.assemble import PartPreview, iter_delivered_part, new_part
from dreamreel.engine.plan import NativeGrid, plan_generation
from dreamreel.media.camera import MOVES, move_camera, move_layer, shows_whole_frame, window
from dreamreel_lab.training.evaluate import heldout_scenes
from dreamreel_lab.world.analyze import analyze_clip
from dreamreel_lab.world.draw import draw_scene
from dreamreel_lab.world.vocab import Camera

GRID = NativeGrid(short_side=96, size_multiple=32, frame_multiple=4, fps=8, max_frames=41)


@pytest.mark.parametrize("size", [(160, 96), (96, 160)], ids=["landscape", "portrait"])
def test_each_move_reads_back_as_its_name(size: tuple[int, int]) -> None:
    """The world analyzer, which reads the rendered world's own camera moves, names each virtual move
    on clips rendered with a still camera (and reads those clips as static)."""
    width, height = size
    for scene in heldout_scenes(2, 5):
        clip = draw_scene(replace(scene, camera=Camera.STATIC), width, height, 41)
        assert analyze_clip(clip).camera is Camera.STATIC
        for move in MOVES:
            assert analyze_clip(move_camera(clip, move)).camera is Camera(move), (move, scene)


@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize("size", [(160, 96), (96, 160), (224, 96)])
def test_the_window_stays_inside_the_frame(move: str, size: tuple[int, int]) -> None:
    width, height = size
    corners = np.array([(0, 0, 1), (width, 0, 1), (0, height, 1), (width, height, 1)], dtype=float)
    for progress in np.linspace(0, 1, 11):
        a, b, c, d, e, f = window(move, float(progress), width, height)
        source = corners @ np.array([[a, d], [b, e], [c, f]])
        assert source[:, 0].min() >= -1e-6 and source[:, 0].max() <= width + 1e-6, (move, progress)
        assert source[:, 1].min() >= -1e-6 and source[:, 1].max() <= height + 1e-6, (move, progress)


def test_a_move_shows_the_whole_frame_where_it_says_it_does() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5, 96, 160, 3), dtype=np.uint8)
    for move in MOVES:
        moved = move_camera(frames, move)
        for end, whole in zip((0, -1), shows_whole_frame(move), strict=True):
            difference = np.abs(moved[end].astype(int) - frames[end]).mean()
            assert (difference < 1) if whole else (difference > 20), (move, end, difference)
    with pytest.raises(ValueError, match="unknown camera move"):
        move_camera(frames, "dolly_zoom")


def test_every_concept_that_moves_has_a_move() -> None:
    assert {concept.camera for concept in CONCEPTS.values()} - {"static"} == set(MOVES)


def plan_for(request: GenerationRequest, virtual: bool = True):
    return plan_generation(request, GRID, seed=0, steps=2, guidance_scale=1.0, virtual_camera=virtual)


def test_the_planner_moves_a_virtual_camera_only_where_nothing_pins_the_ends() -> None:
    concept = GenerationRequest(prompt="a red ball on sand", concepts=("push_in",))
    assert plan_for(concept).camera_move == "zoom_in"  # an alias names the world move
    assert plan_for(concept).prompt == "a red ball on sand, the camera is static"  # the window makes the move
    assert plan_for(concept, virtual=False).camera_move == ""  # the model follows the prompt words
    assert plan_for(concept, virtual=False).prompt == "a red ball on sand, a slow push in"
    assert plan_for(concept.model_copy(update={"concepts": ("static",)})).camera_move == ""
    assert plan_for(concept.model_copy(update={"concepts": ()})).camera_move == ""
    assert plan_for(concept.model_copy(update={"loop": True})).camera_move == ""
    assert plan_for(concept.model_copy(update={"loop": True})).prompt == "a red ball on sand, a slow push in"
    written = GenerationRequest(prompt="a red ball on sand, the camera tilts up")
    assert plan_for(written).camera_move == "tilt_up"
    assert plan_for(written).prompt == "a red ball on sand, the camera is static"
    assert plan_for(written, virtual=False).prompt == written.prompt
    start = Keyframes(frame0=ImageKeyframe(url="https://example.com/a.png"))
    end = Keyframes(frame1=ImageKeyframe(url="https://example.com/b.png"))
    # a zoom in starts on the whole frame, so it may start on an image; a zoom out may end on one
    assert plan_for(concept.model_copy(update={"keyframes": start})).camera_move == "zoom_in"
    assert plan_for(concept.model_copy(update={"keyframes": end})).camera_move == ""
    pull = concept.model_copy(update={"concepts": ("pull_out",)})
    assert plan_for(pull.model_copy(update={"keyframes": end})).camera_move == "zoom_out"
    assert plan_for(pull.model_copy(update={"keyframes": start})).camera_move == ""
    for move in ("pan_left", "tilt_up", "orbit_right"):
        for keyframes in (start, end):
            pinned = concept.model_copy(update={"concepts": (move,), "keyframes": keyframes})
            assert plan_for(pinned).camera_move == "", (move, keyframes)
            assert plan_for(pinned).prompt.endswith(CONCEPTS[move].phrase)


def test_assembly_moves_the_camera_over_the_new_part() -> None:
    plan = plan_for(GenerationRequest(prompt="a red ball on sand", concepts=("pan_left",)))
    native = np.random.default_rng(1).integers(0, 255, (plan.native_frames, plan.native_height,
                                                        plan.native_width, 3), dtype=np.uint8)
    np.testing.assert_array_equal(new_part(native, plan), move_camera(native, "pan_left"))
    assert not np.array_equal(new_part(native, replace(plan, camera_move="")), new_part(native, plan))


def test_previews_show_the_virtual_camera() -> None:
    plan = plan_for(GenerationRequest(prompt="a red ball on sand", concepts=("zoom_in",)))
    native = np.random.default_rng(2).integers(0, 255, (plan.native_frames, plan.native_height,
                                                        plan.native_width, 3), dtype=np.uint8)
    sink = RecordingSink()
    preview = PartPreview(sink, plan)
    assert preview.due(1, plan.num_inference_steps)
    preview.deliver(native)
    np.testing.assert_array_equal(sink.frames[0], move_camera(native, "zoom_in"))


def test_the_join_onto_a_start_image_zooms_with_the_camera() -> None:
    """Image-to-video with a zoom in: the fade from the start image into the model's frames must zoom too.

    The "model" here drew flat grey, so every delivered frame near the start is grey plus a fading share of
    the image's correction. Left still, that share would show the image unzoomed for the first second."""
    start = Keyframes(frame0=ImageKeyframe(url="https://example.com/a.png"))
    plan = plan_for(GenerationRequest(prompt="a red ball on sand", concepts=("zoom_in",), keyframes=start))
    assert plan.camera_move == "zoom_in" and plan.joint_fade > 0
    width, height = plan.output_width, plan.output_height
    picture = draw_scene(heldout_scenes(1, seed=5)[0], width, height, 1)[0]
    grey = np.full((plan.native_frames, plan.native_height, plan.native_width, 3), 128, dtype=np.uint8)
    delivered = list(iter_delivered_part(grey, plan, width=width, height=height, head_frame=lambda: picture))
    np.testing.assert_allclose(delivered[0].astype(float), picture.astype(float), atol=1)  # it starts on the image
    index = plan.joint_fade * plan.source_stride // 2
    frame = delivered[index].astype(np.float32) - 128
    still = picture.astype(np.float32) - 128
    moved = move_layer(still, "zoom_in", (index + int(plan.drop_first)) / (plan.resample_frames - 1))

    def fit(layer: np.ndarray) -> float:  # residual after the best scale: how well ``frame`` is a share of ``layer``
        share = float((frame * layer).sum() / (layer * layer).sum())
        return float(np.abs(frame - share * layer).mean())

    assert fit(moved) < 0.5 * fit(still), (fit(moved), fit(still))
