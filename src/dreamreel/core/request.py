"""The dialect-neutral, validated generation request.

Every dialect parses its own body shape and builds one of these; the worker and the planner only
ever see this type. It carries every Ray 2 field (keyframes, loop, concepts, callback) even where a
feature is not implemented yet: ``core.capabilities`` decides what this server accepts.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_PROMPT_CHARS = 5000
"""Longer prompts are refused: far above what any text encoder reads, and a cheap abuse guard."""

MAX_URL_CHARS = 2048


class AspectRatio(StrEnum):
    SQUARE = "1:1"
    LANDSCAPE = "16:9"
    PORTRAIT = "9:16"
    STANDARD = "4:3"
    STANDARD_PORTRAIT = "3:4"
    CINEMA = "21:9"
    CINEMA_PORTRAIT = "9:21"

    @property
    def ratio(self) -> tuple[int, int]:
        width, height = self.value.split(":")
        return int(width), int(height)


class Resolution(StrEnum):
    """The number is the short side in pixels (Luma's and the AI/ML API's definition)."""

    P540 = "540p"
    P720 = "720p"
    P1080 = "1080p"
    P4K = "4k"

    @property
    def short_side(self) -> int:
        return {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}[self.value]


def delivered_size(aspect: AspectRatio, resolution: Resolution) -> tuple[int, int]:
    """Exact delivered (width, height): the short side is the resolution's, the long side follows the aspect,
    both even (yuv420p); e.g. 16:9 540p -> 960x540, 9:16 4k -> 2160x3840."""
    a, b = aspect.ratio
    short = resolution.short_side
    long = max(2, round(short * max(a, b) / min(a, b) / 2) * 2)
    return (long, short) if a >= b else (short, long)


MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
"""What a public model name may look like: lower-case, digits, ``.``, ``_``, ``-``; safe in a URL path segment
(fal's endpoint ids) and in a log line. Which names a server serves is its models config's
(``engine/catalog.py``); the service refuses the rest, listing them."""

ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=63)]

BuiltinModel = Literal["ray-2", "ray-flash-2"]
"""The names Ray 2 is sold under, the one place they are spelled: every server answers to them (without a
models config both are the embedded model; a config may give either its own meaning)."""

PUBLIC_MODELS: tuple[str, ...] = get_args(BuiltinModel)

DEFAULT_MODEL: BuiltinModel = "ray-2"

Speed = Literal["quality", "balanced", "fast"]
"""How a model trades quality for time (``engine/speed.py``): fewer steps, step caches, a faster encode. A
request may name one (the ``speed`` extension field); unnamed, the model name's own speed applies
(``ray-flash-2``: ``fast``, every other name: ``quality``, unless the models config says otherwise)."""

SPEEDS: tuple[str, ...] = get_args(Speed)

ADAPTER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
MAX_LORAS = 4
"""Adapters one request may stack: each one costs a load and a fused forward pass."""
MAX_LORA_SCALE = 4.0
MAX_SEED = 2**32 - 1
"""Seeds are 32-bit, as every dialect's callers send them (and as torch's CPU generator takes any of them)."""


class LoraRef(BaseModel):
    """One LoRA adapter a request asks for: a name the model's config lists, and its strength."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=ADAPTER_NAME_PATTERN, max_length=63)
    scale: float | None = Field(default=None, ge=-MAX_LORA_SCALE, le=MAX_LORA_SCALE)
    """None: the scale the model's config gives the adapter."""

DurationSeconds = Literal[5, 9]
"""Clip lengths Ray 2 sells (``5s``, ``9s`` in the Ray dialects); other dialects ask for any whole length
from 1 to :data:`MAX_DURATION_S`."""

MAX_DURATION_S = 20
"""The longest clip one request may ask for (OpenAI's extensions go to 20 s)."""
MAX_EDIT_S = 30
"""The longest source an edit takes (Luma's reframe limit); an edit's ``duration_s`` is its source's length."""
MIN_SHORT_SIDE, MAX_LONG_SIDE, MAX_SIDE_RATIO = 128, 3840, 4
"""Bounds of an explicit ``size``: even sides, short side >= 128, long side <= 3840, aspect within 1:4..4:1."""


def nearest_format(width: int, height: int) -> tuple[AspectRatio, Resolution]:
    """The Ray 2 aspect ratio and resolution closest to an explicit size: what capability checks, the
    native size the model renders at and the labels of the other dialects go by."""
    aspect = min(AspectRatio, key=lambda a: abs(math.log((width / height) / (a.ratio[0] / a.ratio[1]))))
    short = min(width, height)
    resolution = min(Resolution, key=lambda r: abs(math.log(short / r.short_side)))
    return aspect, resolution


class ImageKeyframe(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["image"] = "image"
    url: str = Field(min_length=1, max_length=64 * 1024 * 1024)


class GenerationKeyframe(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["generation"] = "generation"
    id: str = Field(min_length=1, max_length=200)


Keyframe = Annotated[ImageKeyframe | GenerationKeyframe, Field(discriminator="type")]


class Keyframes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    frame0: Keyframe | None = None
    frame1: Keyframe | None = None


class ModifyMode(StrEnum):
    """Luma's nine modify strengths, from closest to the source to freest (``rank`` 0..8). Which noise level
    each means is a table per model (``engine/edit.py``)."""

    ADHERE_1 = "adhere_1"
    ADHERE_2 = "adhere_2"
    ADHERE_3 = "adhere_3"
    FLEX_1 = "flex_1"
    FLEX_2 = "flex_2"
    FLEX_3 = "flex_3"
    REIMAGINE_1 = "reimagine_1"
    REIMAGINE_2 = "reimagine_2"
    REIMAGINE_3 = "reimagine_3"

    @property
    def rank(self) -> int:
        return list(ModifyMode).index(self)


EditCoordinate = Annotated[int, Field(ge=-2 * MAX_LONG_SIDE, le=2 * MAX_LONG_SIDE)]


class ModifyEdit(BaseModel):
    """Modify (video-to-video): the source re-made under the prompt, as far from it as ``mode`` allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["modify"] = "modify"
    source: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    """The source video: an http(s) URL, ``upload:<id>`` or ``generation:<id>`` (``core/edits.py``)."""
    mode: ModifyMode = ModifyMode.FLEX_1
    first_frame: str | None = Field(default=None, max_length=64 * 1024 * 1024)
    """An image the result starts on (as a start keyframe), or None."""
    resolution: Resolution | None = None
    """Asked explicitly (an extension field); None: the source's resolution class."""


class ReframePlacement(BaseModel):
    """Where a reframe puts its source, in output pixels (Luma's fields, which fal's and every dialect's reframe
    body share): ``x_start..x_end`` x ``y_start..y_end`` is the box the source is resized into; else
    ``resized_width/height`` its size and ``grid_position_x/y`` its top-left corner; whatever is not given is
    centred at the largest size that fits (``core.edits.reframe_window``)."""

    grid_position_x: EditCoordinate | None = None
    grid_position_y: EditCoordinate | None = None
    x_start: EditCoordinate | None = None
    x_end: EditCoordinate | None = None
    y_start: EditCoordinate | None = None
    y_end: EditCoordinate | None = None
    resized_width: EditCoordinate | None = None
    resized_height: EditCoordinate | None = None

    def placement(self) -> dict[str, int | None]:
        """The placement fields alone, as keyword arguments of :class:`ReframeEdit`."""
        return {name: getattr(self, name) for name in ReframePlacement.model_fields}


class ReframeEdit(ReframePlacement):
    """Reframe (outpaint): the source placed (:class:`ReframePlacement`) in a canvas of the request's
    ``aspect_ratio``, the rest generated."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["reframe"] = "reframe"
    source: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    first_frame: str | None = Field(default=None, max_length=64 * 1024 * 1024)
    resolution: Resolution | None = None


class AddAudioEdit(BaseModel):
    """Add audio (Luma's ``POST /generations/{id}/audio``): a soundtrack made for the source's frames under the
    prompt, delivered with those frames exactly as they are. Only a model that makes sound does it
    (``core.capabilities``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["add_audio"] = "add_audio"
    source: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    """The clip to add sound to (``generation:<id>`` from the Luma route)."""
    first_frame: None = None
    """Never set (every edit has the field): the picture is the source's."""
    resolution: None = None
    """Never set (every edit has the field): the output is the source's size."""


VideoEdit = Annotated[ModifyEdit | ReframeEdit | AddAudioEdit, Field(discriminator="type")]


class GenerationRequest(BaseModel):
    """A text/image-to-video request after a dialect has parsed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edit: VideoEdit | None = None
    """A video edit (modify, reframe, add audio) of a source video; None: a new clip. For an edit, ``size``,
    ``aspect_ratio``, ``resolution`` and ``duration_s`` describe the output (``core.edits``). Declared first so
    the prompt's check can see it."""
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    """Text; only an edit may leave it empty (Luma's modify and reframe make it optional)."""
    model: ModelName = DEFAULT_MODEL
    aspect_ratio: AspectRatio = AspectRatio.LANDSCAPE
    resolution: Resolution = Resolution.P720
    duration_s: int = Field(default=5, ge=1, le=MAX_EDIT_S)
    """Whole seconds, 1..:data:`MAX_DURATION_S`; an edit's is its source's length rounded up (to
    :data:`MAX_EDIT_S`), known at submission for a local source and a reservation's bound for a URL."""
    size: tuple[int, int] | None = None
    """An exact delivered (width, height), when the caller named one (OpenAI's ``size``); ``aspect_ratio`` and
    ``resolution`` then hold its :func:`nearest_format`. None: the size ``aspect_ratio`` and ``resolution``
    name (:func:`delivered_size`)."""
    loop: bool = False
    keyframes: Keyframes | None = None
    concepts: tuple[str, ...] = ()
    callback_url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    """The noise seed; None: one chosen at submission. The seed used is reported back, so a clip can be re-made."""
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    """What the model is steered away from (classifier-free guidance's unconditional text); None: the model's own."""
    loras: tuple[LoraRef, ...] = Field(default=(), max_length=MAX_LORAS)
    """Adapters applied for this request only, by the names the model's config gives them (``engine/catalog.py``)."""
    speed: Speed | None = None
    """The speed preset; None: the model name's own (:data:`Speed`)."""

    @field_validator("loras")
    @classmethod
    def _loras_distinct(cls, value: tuple[LoraRef, ...]) -> tuple[LoraRef, ...]:
        names = [lora.name for lora in value]
        if len(set(names)) != len(names):
            raise ValueError("each LoRA may be named once")
        return value

    @model_validator(mode="after")
    def _edit_alone(self) -> GenerationRequest:
        if self.edit is not None and (self.keyframes is not None or self.loop):
            raise ValueError("a video edit takes no keyframes and no loop")
        return self

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip() and info.data.get("edit") is None:
            raise ValueError("prompt must contain text")
        return value

    @field_validator("duration_s")
    @classmethod
    def _duration_in_bounds(cls, value: int, info: ValidationInfo) -> int:
        if value > MAX_DURATION_S and info.data.get("edit") is None:
            raise ValueError(f"duration_s must be at most {MAX_DURATION_S} (an edit's source, {MAX_EDIT_S})")
        return value

    @field_validator("size")
    @classmethod
    def _size_in_bounds(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is None:
            return None
        width, height = value
        if width % 2 or height % 2:
            raise ValueError("width and height must be even")
        if min(width, height) < MIN_SHORT_SIDE or max(width, height) > MAX_LONG_SIDE:
            raise ValueError(f"the short side must be at least {MIN_SHORT_SIDE} and the long side at most "
                             f"{MAX_LONG_SIDE}")
        if max(width, height) > MAX_SIDE_RATIO * min(width, height):
            raise ValueError(f"the aspect ratio must be between 1:{MAX_SIDE_RATIO} and {MAX_SIDE_RATIO}:1")
        return value

    @property
    def output_size(self) -> tuple[int, int]:
        """The exact (width, height) delivered."""
        return self.size or delivered_size(self.aspect_ratio, self.resolution)

    @field_validator("callback_url")
    @classmethod
    def _callback_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("callback_url must be an http(s) URL")
        return value
