"""The camera-concept table: pinned to the world's caption phrases, and its prompt conditioning."""

from __future__ import annotations

import pytest

from dreamreel.core.concepts import (
    CONCEPTS,
    LUMA_ONLY_CONCEPTS,
    camera_motions,
    conditioned_prompt,
    model_prompt,
    prompt_camera,
    requested_camera,
    resolve_concepts,
    supported_concepts,
)
from dreamreel.core.errors import NotSupported
from dreamreel.core.request import GenerationRequest
from dreamreel_lab.world.captions import CAMERA_PHRASES
from dreamreel_lab.world.vocab import Camera


def test_every_world_camera_move_is_a_concept_with_its_canonical_caption_phrase() -> None:
    for camera in Camera:
        concept = CONCEPTS[camera.value]
        assert concept.camera == camera.value
        assert concept.phrase == CAMERA_PHRASES[camera][0]


def test_aliases_use_a_phrase_the_captions_use_for_their_move() -> None:
    for concept in CONCEPTS.values():
        assert concept.phrase in CAMERA_PHRASES[Camera(concept.camera)], concept
    assert CONCEPTS["push_in"].camera == "zoom_in" and CONCEPTS["pull_out"].camera == "zoom_out"


def test_lists() -> None:
    assert supported_concepts()[:3] == ["static", "pan_left", "pan_right"]
    assert set(supported_concepts()).isdisjoint(LUMA_ONLY_CONCEPTS)
    assert camera_motions() == [CAMERA_PHRASES[camera][0] for camera in Camera]


def test_conditioned_prompt_appends_the_caption_clause() -> None:
    assert conditioned_prompt("a red ball bounces on grass.", ("pan_left",)) == (
        "a red ball bounces on grass, the camera pans left"
    )
    assert conditioned_prompt("a red ball, the Camera Pans Left", ("pan_left", "pan_left")) == (
        "a red ball, the Camera Pans Left"
    )
    assert conditioned_prompt("a red ball", ()) == "a red ball"


def test_the_model_prompt_carries_the_concept_or_a_still_camera() -> None:
    request = GenerationRequest(prompt="a blue star on sand", concepts=("zoom_out",))
    assert model_prompt(request) == "a blue star on sand, the camera zooms out"
    assert model_prompt(request, moved_virtually=True) == "a blue star on sand, the camera is static"
    assert model_prompt(GenerationRequest(prompt="a blue star on sand")) == "a blue star on sand"
    # a camera phrase in the prompt, made by the virtual camera, is replaced where it stands
    written = GenerationRequest(prompt="The Camera Pans Left over a blue star on sand")
    assert model_prompt(written) == "The Camera Pans Left over a blue star on sand"
    assert model_prompt(written, moved_virtually=True) == "the camera is static over a blue star on sand"


def test_a_listed_camera_phrase_in_the_prompt_asks_for_its_move() -> None:
    assert prompt_camera("a red ball on grass, The camera zooms in.").key == "zoom_in"  # type: ignore[union-attr]
    assert prompt_camera("a red ball on grass, a slow push in").camera == "zoom_in"  # type: ignore[union-attr]
    assert prompt_camera("a frying pan left on the table") is None  # only the listed phrases count
    assert prompt_camera("the camera pans left, then the camera tilts up") is None  # two moves: ambiguous
    assert requested_camera(GenerationRequest(prompt="a ring, the camera orbits right")) == "orbit_right"
    assert requested_camera(GenerationRequest(prompt="a ring, the camera is static")) == ""
    concept_wins = GenerationRequest(prompt="a ring, the camera orbits right", concepts=("tilt_down",))
    assert requested_camera(concept_wins) == "tilt_down"


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        (("dolly_zoom",), ["dolly_zoom", "does not support"]),
        (("warp_speed",), ["warp_speed", "unknown"]),
        (("pan_left", "zoom_in"), ["pan_left", "zoom_in", "at most 1"]),
    ],
)
def test_refusals_name_the_concept(keys: tuple[str, ...], words: list[str]) -> None:
    with pytest.raises(NotSupported) as caught:
        resolve_concepts(keys)
    assert caught.value.field == "concepts"
    for word in words:
        assert word in caught.value.message
