"""The dialect-neutral, validated generation request.

Every dialect parses its own body shape and builds one of these; the worker and the planner only
ever see this type. It carries every Ray 2 field (keyframes, loop, concepts, callback) even where a
feature is not implemented yet: ``core.capabilities`` decides what this server accepts.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


ModelName = Literal["ray-2", "ray-flash-2"]
"""The public model names, the one place they are spelled; every dialect maps its own model id onto one."""

PUBLIC_MODELS: tuple[str, ...] = get_args(ModelName)

DEFAULT_MODEL: ModelName = "ray-2"

DurationSeconds = Literal[5, 9]
"""Clip lengths Ray 2 sells (``5s``, ``9s`` in the Ray dialects); other dialects ask for any whole length
from 1 to :data:`MAX_DURATION_S`."""

MAX_DURATION_S = 20
"""The longest clip one request may ask for (OpenAI's extensions go to 20 s)."""
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


class GenerationRequest(BaseModel):
    """A text/image-to-video request after a dialect has parsed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: ModelName = DEFAULT_MODEL
    aspect_ratio: AspectRatio = AspectRatio.LANDSCAPE
    resolution: Resolution = Resolution.P720
    duration_s: int = Field(default=5, ge=1, le=MAX_DURATION_S)
    size: tuple[int, int] | None = None
    """An exact delivered (width, height), when the caller named one (OpenAI's ``size``); ``aspect_ratio`` and
    ``resolution`` then hold its :func:`nearest_format`. None: the size ``aspect_ratio`` and ``resolution``
    name (:func:`delivered_size`)."""
    loop: bool = False
    keyframes: Keyframes | None = None
    concepts: tuple[str, ...] = ()
    callback_url: str | None = Field(default=None, max_length=MAX_URL_CHARS)

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must contain text")
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
