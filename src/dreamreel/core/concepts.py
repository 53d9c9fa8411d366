"""Luma camera concepts: which ones this server honours and the words that steer the camera.

Why prompt words and not a control signal: Ray 2's concepts steer the camera, and the models
dreamreel runs have no camera-control input - the embedded model learned camera moves only from
its training captions (``world/captions.py``: ``CAMERA_PHRASES``), and LTX-Video and Wan follow
camera directions written in the prompt ("The camera pans left", per their prompting guides).
So a concept becomes a clause appended to the prompt, in the canonical wording of the captions
(``"..., the camera pans left"`` is exactly how ``canonical_caption`` ends), which is also plain
English for the open-weight models.

Only the camera moves the embedded model was trained on are offered: a concept we cannot show
working (``dolly_zoom``, ``handheld``, ``crane_up`` ...) is refused rather than silently ignored.
This module is the one table; ``tests/unit/test_concepts.py`` pins it to the world's caption
phrases so the two cannot drift apart. No torch, no HTTP, no ``dreamreel_lab`` import (the API
process stays light).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dreamreel.core.errors import NotSupported
from dreamreel.core.request import GenerationRequest


@dataclass(frozen=True)
class CameraConcept:
    key: str
    """Luma's concept key, as sent in ``concepts: [{"key": ...}]``."""
    phrase: str
    """The clause appended to the prompt (the caption grammar's wording for this move)."""
    camera: str
    """The world camera move (``dreamreel_lab.world.vocab.Camera`` value) the analyzer should read back."""


CONCEPTS: dict[str, CameraConcept] = {
    concept.key: concept
    for concept in (
        CameraConcept("static", "the camera is static", "static"),
        CameraConcept("pan_left", "the camera pans left", "pan_left"),
        CameraConcept("pan_right", "the camera pans right", "pan_right"),
        CameraConcept("tilt_up", "the camera tilts up", "tilt_up"),
        CameraConcept("tilt_down", "the camera tilts down", "tilt_down"),
        CameraConcept("zoom_in", "the camera zooms in", "zoom_in"),
        CameraConcept("zoom_out", "the camera zooms out", "zoom_out"),
        CameraConcept("orbit_left", "the camera orbits left", "orbit_left"),
        CameraConcept("orbit_right", "the camera orbits right", "orbit_right"),
        # Luma's dolly moves; the captions say "a slow push in" / "a slow pull back" for zooms, and on
        # the world's flat scenery a dolly and a zoom look the same, so these are honest aliases.
        CameraConcept("push_in", "a slow push in", "zoom_in"),
        CameraConcept("pull_out", "a slow pull back", "zoom_out"),
    )
}
"""Supported concept keys, in the order ``GET /generations/concepts/list`` returns them."""

LUMA_ONLY_CONCEPTS = frozenset(
    {
        "aerial", "aerial_drone", "bolt_cam", "crane_down", "crane_up", "dolly_zoom", "elevator_doors",
        "eye_level", "ground_level", "handheld", "high_angle", "low_angle", "over_the_shoulder", "overhead",
        "pedestal_down", "pedestal_up", "pov", "roll_left", "roll_right", "selfie", "tiny_planet",
        "truck_left", "truck_right",
    }
)  # fmt: skip
"""Concepts Luma's Ray 2 knows that this server does not render (only used for a clearer error)."""

MAX_CAMERA_MOVES = 1
"""The models learned one camera move per clip; "pan left and zoom in" was never in the captions."""


def supported_concepts() -> list[str]:
    """Concept keys, for ``GET /generations/concepts/list``."""
    return list(CONCEPTS)


def camera_motions() -> list[str]:
    """Prompt phrases that move the camera, for ``GET /generations/camera_motion/list``.

    Luma documents this list as "camera motion strings which can be used in prompts"; ours are the
    canonical phrases the embedded model was trained on, one per move (aliases are left out).
    """
    return list(dict.fromkeys(concept.phrase for concept in CONCEPTS.values() if concept.key == concept.camera))


def resolve_concepts(keys: tuple[str, ...]) -> tuple[CameraConcept, ...]:
    """The concepts named by ``keys`` (duplicates dropped); ``NotSupported`` naming any we cannot honour."""
    unique = tuple(dict.fromkeys(keys))
    for key in unique:
        if key not in CONCEPTS:
            known = "a Luma concept this server does not support" if key in LUMA_ONLY_CONCEPTS else "unknown"
            raise NotSupported(
                f"concept '{key}' is {known}; supported concepts: {', '.join(CONCEPTS)}", field="concepts"
            )
    if len(unique) > MAX_CAMERA_MOVES:
        raise NotSupported(
            f"concepts {', '.join(unique)}: at most {MAX_CAMERA_MOVES} camera move per generation", field="concepts"
        )
    return tuple(CONCEPTS[key] for key in unique)


def conditioned_prompt(prompt: str, keys: tuple[str, ...]) -> str:
    """``prompt`` with each concept's camera clause appended the way the training captions phrase it.

    A clause already present in the prompt (any case) is not repeated.
    """
    text = prompt.strip()
    for concept in resolve_concepts(keys):
        if concept.phrase in text.lower():
            continue
        text = f"{text.rstrip('.,;: ')}, {concept.phrase}"
    return text


def prompt_camera(prompt: str) -> CameraConcept | None:
    """The camera move ``prompt`` names in this table's phrases (those of ``GET /generations/camera_motion/list``
    and the aliases'), any case; ``None`` if it names none or more than one move.

    Luma documents those phrases as camera moves to write into prompts, so a prompt that uses one asks
    for the move as a concept does. Only the listed phrases count, not every synonym the training captions
    use: "the camera pans left" is unambiguous in free text where "pan left" may not be.
    """
    text = prompt.lower()
    named = {concept.camera: concept for concept in CONCEPTS.values() if concept.phrase in text}
    return next(iter(named.values())) if len(named) == 1 else None


def requested_camera(request: GenerationRequest) -> str:
    """The world camera move ``request`` asks for: its concept's, else its prompt's (:func:`prompt_camera`);
    ``""`` for none or a still camera."""
    concepts = resolve_concepts(request.concepts)
    named = concepts[0] if concepts else prompt_camera(request.prompt)
    return named.camera if named is not None and named.camera != "static" else ""


def model_prompt(request: GenerationRequest, *, moved_virtually: bool = False) -> str:
    """The prompt the model receives (the stored request keeps the caller's prompt and concepts apart).

    Normally the concepts' clauses appended to the request's prompt. Where a virtual camera makes the move
    (``moved_virtually``, ``media.camera``), the model is asked for a still camera instead: a camera phrase
    in the prompt is replaced by the still-camera clause, or the clause is appended. The embedded
    model does not make the move it is asked for, and the request still costs it steadiness: its scenery
    drifts and boils more under camera words it never learned to follow (its flow trained on still-camera
    clips), and the virtual move reads back less often. On the same 132 held-out scenes and seeds, 81.1 %
    of the clips read as their concept when the model drew them for "the camera is static", against 75.0 %
    for the concept's own words (``bench/bench_concepts.py``, ``docs/benchmarks.md``).
    """
    if not moved_virtually:
        return conditioned_prompt(request.prompt, request.concepts)
    text = request.prompt
    for concept in CONCEPTS.values():
        if concept.camera != "static":
            text = re.sub(re.escape(concept.phrase), CONCEPTS["static"].phrase, text, flags=re.IGNORECASE)
    return conditioned_prompt(text, ("static",))
