"""world/: the procedural world renders deterministically at every aspect ratio, its captions
tell the truth, and the classical analyzer reads the ground truth back from rendered clips,
also after the blur and noise a small model's output carries."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dreamreel_lab.world import (
    CAMERA_PHRASES,
    REDUCED_WORLD,
    Allowed,
    Background,
    Camera,
    Colour,
    Motion,
    ObjectSpec,
    Scene,
    Shape,
    Split,
    analyze_clip,
    canonical_caption,
    caption,
    draw_scene,
    sample_scene,
    score,
)
from dreamreel_lab.world.blobs import find_blobs
from dreamreel_lab.world.captions import BACKGROUND_WORDS, CAMERA_BY_NAME, COLOUR_WORDS, SHAPE_WORDS
from dreamreel_lab.world.geometry import extent
from dreamreel_lab.world.layout import layout_clip
from dreamreel_lab.world.textures import colour_samples
from dreamreel_lab.world.vocab import COLOUR_RGB, FORBIDDEN, colour_allowed_on

ASPECTS = {
    "1:1": (1, 1),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "21:9": (21, 9),
    "9:21": (9, 21),
}
ATTRIBUTES = ("colour", "shape", "motion", "background", "camera")
SIZES = ((160, 96), (96, 160))


def size_for(aspect: tuple[int, int], short: int) -> tuple[int, int]:
    w, h = aspect
    return (round(short * w / h), short) if w >= h else (short, round(short * h / w))


def test_world_is_numpy_only() -> None:
    code = "import sys, dreamreel_lab.world; print(','.join(m for m in ('torch', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_vocabulary_is_big_enough_and_cameras_use_the_api_names() -> None:
    assert len(Shape) >= 5 and len(Colour) >= 10 and len(Background) >= 6
    assert {c.value for c in Camera} == {
        "static",
        "pan_left",
        "pan_right",
        "tilt_up",
        "tilt_down",
        "zoom_in",
        "zoom_out",
        "orbit_left",
        "orbit_right",
    }
    assert set(CAMERA_PHRASES) == set(Camera) and CAMERA_BY_NAME["orbit_left"] is Camera.ORBIT_LEFT


def test_palette_colours_are_far_apart_and_allowed_ones_stand_out_from_every_background() -> None:
    rgb = np.array([COLOUR_RGB[c] for c in Colour], dtype=float)
    gaps = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1)) + np.eye(len(rgb)) * 1e9
    assert gaps.min() >= 95
    for background in Background:
        scenery = colour_samples(background)[0].astype(float)
        for colour in Colour:
            nearest = np.sqrt(((scenery - np.array(colour.rgb)) ** 2).sum(-1)).min()
            if colour_allowed_on(colour, background):
                assert nearest >= 75, (colour, background, nearest)
            else:
                assert (colour, background) in FORBIDDEN


def test_same_scene_same_clip_and_seed_changes_the_texture() -> None:
    rng = np.random.default_rng(1)
    for _ in range(3):
        scene = sample_scene(rng)
        a = draw_scene(scene, 160, 96, 17)
        assert np.array_equal(a, draw_scene(scene, 160, 96, 17))
        other = Scene(scene.objects, scene.background, scene.camera, seed=scene.seed + 1)
        assert not np.array_equal(a, draw_scene(other, 160, 96, 17))


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_every_aspect_ratio_renders_the_right_shape_with_objects_in_frame(aspect: str) -> None:
    rng = np.random.default_rng(sum(map(ord, aspect)))
    for short in (64, 96, 540):
        width, height = size_for(ASPECTS[aspect], short)
        frames = 41 if short < 200 else 5
        scene = sample_scene(rng, allowed=Allowed(object_counts=(1, 2), two_object_probability=0.5))
        clip = draw_scene(scene, width, height, frames)
        assert clip.shape == (frames, height, width, 3) and clip.dtype == np.uint8
        layout = layout_clip(scene, width, height, frames)
        for obj, track in zip(scene.objects, layout.objects, strict=True):
            left, right, up, down = extent(obj.shape)
            assert (track.x - left * track.radius).min() >= -0.5 and (
                track.x + right * track.radius
            ).max() <= width + 0.5
            assert (track.y - up * track.radius).min() >= -0.5 and (track.y + down * track.radius).max() <= height + 0.5


def test_motions_and_camera_moves_are_large_enough_to_read() -> None:
    obj = ObjectSpec(Shape.BALL, Colour.RED, Motion.RIGHT, speed=1.0)
    track = layout_clip(Scene((obj,), Background.PLAIN), 160, 96, 41).objects[0]
    assert 0.4 <= (track.x[-1] - track.x[0]) / 160 <= 0.65
    still = ObjectSpec(Shape.BALL, Colour.RED, Motion.STILL)
    panned = layout_clip(Scene((still,), Background.PLAIN, Camera.PAN_LEFT), 160, 96, 41).objects[0]
    assert panned.x[-1] - panned.x[0] > 25  # a still object drifts right when the camera pans left


def test_captions_vary_and_name_the_right_colour_and_shape() -> None:
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(200):
        scene = sample_scene(rng)
        text = caption(scene, rng)
        seen.add(text)
        for obj in scene.objects:
            assert any(word in text for word in COLOUR_WORDS[obj.colour]), text
            assert any(word in text for word in SHAPE_WORDS[obj.shape]), text
        assert any(phrase in text for phrase in BACKGROUND_WORDS[scene.background]), text
        if scene.camera is not Camera.STATIC:
            assert any(phrase in text for phrase in CAMERA_PHRASES[scene.camera]), text
    assert len(seen) == 200
    scene = Scene((ObjectSpec(Shape.STAR, Colour.ORANGE, Motion.UP_LEFT),), Background.WATER, Camera.ZOOM_OUT)
    assert canonical_caption(scene) == "an orange star moves up and to the left over water, the camera zooms out"


def test_reduced_world_and_heldout_split() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        scene = sample_scene(rng, allowed=REDUCED_WORLD)
        assert len(scene.objects) == 1 and scene.camera is Camera.STATIC
        assert REDUCED_WORLD.shapes is not None and scene.objects[0].shape in REDUCED_WORLD.shapes
    split = Split(axes=("colour", "shape"), heldout_fraction=0.15)
    assert split.heldout() == Split(axes=("colour", "shape"), heldout_fraction=0.15).heldout()
    assert len(split.heldout()) == round(len(split.combos()) * 0.15)
    training = set(split.combos()) - split.heldout()
    assert {c for c, _ in training} == {c.value for c in Colour} and {s for _, s in training} == {
        s.value for s in Shape
    }
    for role in ("train", "heldout"):
        for _ in range(20):
            scene = sample_scene(rng, allowed=Allowed(split=split, role=role))
            assert split.role(scene.objects, scene.background) == role
    by_background = Split(axes=("colour", "background"))
    assert not any((Colour(c), Background(b)) in FORBIDDEN for c, b in by_background.combos())


def test_blobs_match_a_flood_fill() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((2, 30, 40)) < 0.45
    blobs = find_blobs(mask)
    assert blobs.area.sum() == mask.sum()
    for b in range(len(blobs)):
        crop, left, top = blobs.mask(b)
        frame = mask[blobs.frame[b], top : top + crop.shape[0], left : left + crop.shape[1]]
        assert np.all(frame[crop])
    # Flood fill from one blob's first pixel reaches exactly its pixels (4-connectivity).
    crop, left, top = blobs.mask(0)
    f = int(blobs.frame[0])
    y, x = np.argwhere(crop)[0] + (top, left)
    seen, todo = {(y, x)}, [(y, x)]
    while todo:
        cy, cx = todo.pop()
        for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
            if 0 <= ny < 30 and 0 <= nx < 40 and mask[f, ny, nx] and (ny, nx) not in seen:
                seen.add((ny, nx))
                todo.append((ny, nx))
    assert len(seen) == blobs.area[0]


@dataclass(frozen=True)
class Judged:
    clean: Counter[str]
    degraded: Counter[str]
    count: int


def degrade(clip: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """What a small model's output looks like: soft (gaussian blur, sigma 1 px) and noisy (std 8/255)."""
    blurred = np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(1.0))) for f in clip])
    return np.clip(blurred.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def judged() -> Judged:
    """100 random single-object clips (half 160x96, half 96x160), analyzed clean and degraded (the analyzer reads
    all 200 of a 200-clip draw clean and 199 of 200 degraded; 100 keeps the test at half the time)."""
    rng = np.random.default_rng(2024)
    clean, degraded = Counter[str](), Counter[str]()
    count = 100
    # Fresh gaussian noise per clip costs more than the analysis; shuffled frames of a bank will do.
    bank = {size: np.round(rng.normal(0.0, 8.0, (41, size[1], size[0], 3))).astype(np.int16) for size in SIZES}
    for i in range(count):
        scene = sample_scene(rng, allowed=Allowed(object_counts=(1,)))
        width, height = SIZES[i % 2]
        clip = draw_scene(scene, width, height, 41)
        noise = bank[(width, height)][rng.permutation(41)]
        clean.update(k for k, ok in score(analyze_clip(clip), scene).items() if ok)
        degraded.update(k for k, ok in score(analyze_clip(degrade(clip, noise)), scene).items() if ok)
    return Judged(clean, degraded, count)


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_analyzer_reads_clean_clips(judged: Judged, attribute: str) -> None:
    assert judged.clean[attribute] / judged.count >= 0.98


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_analyzer_survives_blur_and_noise(judged: Judged, attribute: str) -> None:
    assert judged.degraded[attribute] / judged.count >= 0.95


def test_analyzer_handles_two_objects_and_large_frames() -> None:
    scene = Scene(
        (
            ObjectSpec(Shape.STAR, Colour.YELLOW, Motion.BOUNCING),
            ObjectSpec(Shape.RING, Colour.PURPLE, Motion.LEFT),
        ),
        Background.GRASS,
        Camera.ZOOM_IN,
        seed=5,
    )
    result = score(analyze_clip(draw_scene(scene, 640, 360, 41)), scene)
    assert all(result.values()), result


def test_static_camera_world_keeps_everything_but_the_camera_move() -> None:
    """``--world static-camera``: the camera never moves; every other word still varies, and the split holds."""
    from dreamreel_lab.training.worlds import world_for

    allowed = world_for("static-camera")
    rng = np.random.default_rng(7)
    scenes = [sample_scene(rng, allowed=allowed) for _ in range(300)]
    assert {scene.camera for scene in scenes} == {Camera.STATIC}
    assert len({scene.background for scene in scenes}) == len(Background)
    assert len({obj.motion for scene in scenes for obj in scene.objects}) == len(Motion)
    heldout = world_for("static-camera", role="heldout")
    assert all(scene.camera == Camera.STATIC for scene in (sample_scene(rng, allowed=heldout) for _ in range(20)))


def _soft_with_fixed_pattern(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a 16x VAE draws: the scenery's coarse structure, which slides, under a fine mottle that stays put."""
    soft = np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(3.0))) for f in clip])
    mottle = np.asarray(
        Image.fromarray(rng.normal(128, 40, clip.shape[1:3]).clip(0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(1.0)
        ),
        dtype=np.int16,
    )
    return np.clip(soft.astype(np.int16) + (mottle - 128)[None, :, :, None], 0, 255).astype(np.uint8)


@pytest.mark.parametrize("camera", [Camera.PAN_LEFT, Camera.TILT_DOWN, Camera.ZOOM_IN, Camera.ORBIT_RIGHT])
def test_camera_move_reads_through_a_fixed_pattern(camera: Camera) -> None:
    """A decoder's fixed mottle over sliding scenery must not hide the move."""
    rng = np.random.default_rng(int(camera.value.encode().hex(), 16) % 2**32)
    hits = 0
    for background in (Background.GRASS, Background.SKY, Background.WATER, Background.PLAIN):
        allowed = Allowed(object_counts=(1,), backgrounds=(background,), cameras=(camera,))
        scene = sample_scene(rng, allowed=allowed)
        clip = _soft_with_fixed_pattern(draw_scene(scene, 160, 96, 41), rng)
        hits += analyze_clip(clip).camera is camera
    assert hits >= 3


def test_flicker_on_a_still_camera_is_not_a_move() -> None:
    """Coarse noise that changes every frame (a weak model's shimmer) has no direction to follow."""
    rng = np.random.default_rng(8)
    moves = 0
    for background in (Background.GRASS, Background.SAND, Background.NIGHT, Background.PLAIN):
        allowed = Allowed(object_counts=(1,), backgrounds=(background,), cameras=(Camera.STATIC,))
        scene = sample_scene(rng, allowed=allowed)
        clip = draw_scene(scene, 160, 96, 41).astype(np.int16)
        flicker = np.stack(
            [
                np.asarray(
                    Image.fromarray(rng.normal(128, 30, (96, 160)).clip(0, 255).astype(np.uint8)).filter(
                        ImageFilter.GaussianBlur(3.0)
                    ),
                    dtype=np.int16,
                )
                - 128
                for _ in range(41)
            ]
        )
        moves += analyze_clip(np.clip(clip + flicker[..., None], 0, 255).astype(np.uint8)).camera is not Camera.STATIC
    assert moves == 0
