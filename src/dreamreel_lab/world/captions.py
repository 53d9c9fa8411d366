"""Captions for world clips: a small grammar with synonyms and free word order.

Why a grammar and not one template: the model must learn that "crimson sphere", "red ball"
and "scarlet circle" name the same thing, and that the background or camera may come first
or last, or it will only follow prompts phrased exactly like its training captions. Every
word table here has the *canonical* word first; :func:`canonical_caption` uses only those,
so evaluation prompts can be fixed and unambiguous while training captions vary.

The tables are public because other code needs them: prompt conditioning maps camera
concepts to :data:`CAMERA_PHRASES`, and evaluation writes prompts with these words.
"""

from __future__ import annotations

import numpy as np

from dreamreel_lab.world.spec import ObjectSpec, Scene
from dreamreel_lab.world.vocab import DIRECTIONS, Background, Camera, Colour, Motion, Shape

COLOUR_WORDS: dict[Colour, tuple[str, ...]] = {
    Colour.RED: ("red", "crimson", "scarlet"),
    Colour.ORANGE: ("orange", "tangerine", "amber"),
    Colour.YELLOW: ("yellow", "golden", "lemon-yellow"),
    Colour.GREEN: ("green", "emerald", "leaf-green"),
    Colour.CYAN: ("cyan", "turquoise", "aqua"),
    Colour.BLUE: ("blue", "azure", "cobalt"),
    Colour.PURPLE: ("purple", "violet", "amethyst"),
    Colour.PINK: ("pink", "rose", "bubblegum-pink"),
    Colour.WHITE: ("white", "snow-white", "ivory"),
    Colour.BLACK: ("black", "jet-black", "ebony"),
}

SHAPE_WORDS: dict[Shape, tuple[str, ...]] = {
    Shape.BALL: ("ball", "sphere", "circle", "orb"),
    Shape.SQUARE: ("square", "box", "block"),
    Shape.TRIANGLE: ("triangle", "triangular shape", "pyramid"),
    Shape.STAR: ("star", "five-pointed star", "star shape"),
    Shape.DIAMOND: ("diamond", "rhombus", "lozenge"),
    Shape.RING: ("ring", "donut", "hoop"),
}

_DIRECTION_WORDS: dict[Motion, tuple[str, ...]] = {
    Motion.LEFT: ("left", "to the left", "leftward", "from right to left"),
    Motion.RIGHT: ("right", "to the right", "rightward", "from left to right"),
    Motion.UP: ("up", "upward", "upwards", "toward the top"),
    Motion.DOWN: ("down", "downward", "downwards", "toward the bottom"),
    Motion.UP_LEFT: ("up and to the left", "diagonally up and left", "toward the upper left"),
    Motion.UP_RIGHT: ("up and to the right", "diagonally up and right", "toward the upper right"),
    Motion.DOWN_LEFT: ("down and to the left", "diagonally down and left", "toward the lower left"),
    Motion.DOWN_RIGHT: ("down and to the right", "diagonally down and right", "toward the lower right"),
}

_TRAVEL_VERBS: tuple[tuple[str, str], ...] = (
    ("moves", "moving"),
    ("slides", "sliding"),
    ("drifts", "drifting"),
    ("glides", "gliding"),
    ("travels", "travelling"),
)

# (finite verb, participle, complement): "bounces" / "bouncing" / "up and down".
_MOTION_VERBS: dict[Motion, tuple[tuple[str, str, str], ...]] = {
    Motion.BOUNCING: (
        ("bounces", "bouncing", ""),
        ("bounces", "bouncing", "up and down"),
        ("hops", "hopping", "up and down"),
    ),
    Motion.CIRCLING: (
        ("moves", "moving", "in a circle"),
        ("circles", "circling", ""),
        ("circles", "circling", "around"),
        ("travels", "travelling", "in a circular path"),
    ),
    Motion.GROWING: (
        ("grows", "growing", ""),
        ("grows", "growing", "bigger"),
        ("gets", "getting", "larger"),
        ("expands", "expanding", ""),
    ),
    Motion.SHRINKING: (
        ("shrinks", "shrinking", ""),
        ("gets", "getting", "smaller"),
        ("shrinks", "shrinking", "away"),
        ("contracts", "contracting", ""),
    ),
    Motion.STILL: (
        ("stays", "staying", "still"),
        ("sits", "sitting", "still"),
        ("rests", "resting", "in place"),
        ("remains", "remaining", "motionless"),
    ),
}

BACKGROUND_WORDS: dict[Background, tuple[str, ...]] = {
    Background.SKY: ("in the sky", "in a blue sky", "against a cloudy sky", "among the clouds"),
    Background.NIGHT: ("at night", "under the stars", "in the night sky", "against a starry sky"),
    Background.SUNSET: ("at sunset", "against a sunset sky", "at dusk", "in the evening glow"),
    Background.GRASS: ("on grass", "on green grass", "on a lawn", "in a grassy field"),
    Background.SAND: ("on sand", "on the beach", "on the sand", "on a sandy beach"),
    Background.WATER: ("over water", "above the sea", "over the ocean", "over rippling waves"),
    Background.PLAIN: (
        "on a plain background",
        "on a plain grey background",
        "against a grey backdrop",
        "on a neutral background",
    ),
}

CAMERA_PHRASES: dict[Camera, tuple[str, ...]] = {
    Camera.STATIC: ("the camera is static", "static camera", "the camera stays fixed", "a locked-off shot"),
    Camera.PAN_LEFT: ("the camera pans left", "camera panning left", "pan left", "a slow pan to the left"),
    Camera.PAN_RIGHT: ("the camera pans right", "camera panning right", "pan right", "a slow pan to the right"),
    Camera.TILT_UP: ("the camera tilts up", "camera tilting upward", "tilt up", "a slow upward tilt"),
    Camera.TILT_DOWN: ("the camera tilts down", "camera tilting downward", "tilt down", "a slow downward tilt"),
    Camera.ZOOM_IN: ("the camera zooms in", "camera zooming in", "zoom in", "a slow push in"),
    Camera.ZOOM_OUT: ("the camera zooms out", "camera zooming out", "zoom out", "a slow pull back"),
    Camera.ORBIT_LEFT: (
        "the camera orbits left",
        "camera orbiting to the left",
        "orbit left",
        "a slow orbit to the left",
    ),
    Camera.ORBIT_RIGHT: (
        "the camera orbits right",
        "camera orbiting to the right",
        "orbit right",
        "a slow orbit to the right",
    ),
}
"""Ways to say each camera move; the first is canonical. All work as a clause after a comma."""

CAMERA_BY_NAME: dict[str, Camera] = {camera.value: camera for camera in Camera}
"""API camera-concept names (``pan_left``, ``orbit_right``, ...) to camera moves."""

STATIC_MENTION_PROBABILITY = 0.5
"""Real prompts rarely say "static camera"; half the static clips' captions leave it out."""

_ROLLING = frozenset({Shape.BALL, Shape.RING})
_GROUND = frozenset({Background.GRASS, Background.SAND, Background.PLAIN})
_AIRBORNE = frozenset({Background.SKY, Background.NIGHT, Background.SUNSET})


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(word: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.25:
        return "the"
    return "an" if word[0] in "aeiou" else "a"


def _motion_forms(obj: ObjectSpec, background: Background) -> list[tuple[str, str, str]]:
    """(finite, participle, complement) ways to say what ``obj`` does, coherent with the scene."""
    if obj.motion not in DIRECTIONS:
        forms = list(_MOTION_VERBS[obj.motion])
        if obj.motion is Motion.STILL and background in _AIRBORNE | {Background.WATER}:
            forms.append(("hovers", "hovering", "in place"))
        return forms
    verbs = list(_TRAVEL_VERBS)
    if obj.shape in _ROLLING and background in _GROUND:
        verbs.append(("rolls", "rolling"))
    if background in _AIRBORNE:
        verbs.append(("flies", "flying"))
    if background is Background.WATER:
        verbs.append(("floats", "floating"))
    return [(finite, participle, where) for finite, participle in verbs for where in _DIRECTION_WORDS[obj.motion]]


def _object_phrases(obj: ObjectSpec, background: Background, rng: np.random.Generator) -> tuple[str, str]:
    """A finite clause ("a red ball rolls left") and a noun phrase ("a red ball rolling left")."""
    colour = _choice(rng, COLOUR_WORDS[obj.colour])
    shape = _choice(rng, SHAPE_WORDS[obj.shape])
    forms = _motion_forms(obj, background)
    finite, participle, complement = forms[int(rng.integers(len(forms)))]
    tail = f" {complement}" if complement else ""
    noun = f"{colour} {shape}"
    clause = f"{_article(noun, rng)} {noun} {finite}{tail}"
    style = rng.random()
    if not complement and style < 0.4:  # "a bouncing red ball"
        adjective = f"{participle} {noun}"
        phrase = f"{_article(adjective, rng)} {adjective}"
    elif style < 0.7:
        phrase = f"{_article(noun, rng)} {noun} {participle}{tail}"
    else:
        phrase = f"{_article(noun, rng)} {noun} that {finite}{tail}"
    return clause, phrase


def _camera_phrase(camera: Camera, rng: np.random.Generator) -> str | None:
    if camera is Camera.STATIC and rng.random() >= STATIC_MENTION_PROBABILITY:
        return None
    return _choice(rng, CAMERA_PHRASES[camera])


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """A randomly phrased, always truthful caption of ``scene``."""
    where = _choice(rng, BACKGROUND_WORDS[scene.background])
    parts = [_object_phrases(obj, scene.background, rng) for obj in scene.objects]
    camera = _camera_phrase(scene.camera, rng)
    layout = int(rng.integers(4))
    if len(parts) == 1:
        clause, phrase = parts[0]
        body = [f"{clause} {where}", f"{where}, {clause}", f"{phrase} {where}", f"there is {phrase} {where}"][layout]
    else:
        (clause_a, phrase_a), (clause_b, phrase_b) = parts
        body = [
            f"{clause_a} and {clause_b} {where}",
            f"{where}, {clause_a} while {clause_b}",
            f"two objects {where}: {phrase_a} and {phrase_b}",
            f"{phrase_a} and {phrase_b} {where}",
        ][layout]
    if camera is None:
        return body
    if rng.random() < 0.35:
        return f"{camera}: {body}" if rng.random() < 0.5 else f"{camera}, {body}"
    if camera.startswith("the camera ") and scene.camera is not Camera.STATIC and rng.random() < 0.4:
        return f"{body} as {camera}"
    return f"{body}, {camera}"


_CANONICAL_MOTION: dict[Motion, str] = {
    Motion.LEFT: "moves left",
    Motion.RIGHT: "moves right",
    Motion.UP: "moves up",
    Motion.DOWN: "moves down",
    Motion.UP_LEFT: "moves up and to the left",
    Motion.UP_RIGHT: "moves up and to the right",
    Motion.DOWN_LEFT: "moves down and to the left",
    Motion.DOWN_RIGHT: "moves down and to the right",
    Motion.BOUNCING: "bounces",
    Motion.CIRCLING: "moves in a circle",
    Motion.GROWING: "grows",
    Motion.SHRINKING: "shrinks",
    Motion.STILL: "stays still",
}


def canonical_caption(scene: Scene) -> str:
    """The one fixed phrasing of ``scene`` (first word of every table): for evaluation prompts."""
    objects = " and ".join(
        f"{'an' if COLOUR_WORDS[o.colour][0][0] in 'aeiou' else 'a'} {COLOUR_WORDS[o.colour][0]} "
        f"{SHAPE_WORDS[o.shape][0]} {_CANONICAL_MOTION[o.motion]}"
        for o in scene.objects
    )
    return f"{objects} {BACKGROUND_WORDS[scene.background][0]}, {CAMERA_PHRASES[scene.camera][0]}"
