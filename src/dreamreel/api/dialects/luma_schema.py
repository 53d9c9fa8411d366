"""Luma Dream Machine v1 objects exactly as ``dialects/luma.py`` renders them: its routes' response models.

The SDK (``lumaai``) parses these; the fields follow the render functions' key order, and unknown keys are
refused (``api/schema.ResponseModel``), so the OpenAPI document cannot drift from the wire.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dreamreel.api.extensions import ControlsOut
from dreamreel.api.schema import DetailError, ResponseModel, error_responses
from dreamreel.core.request import AspectRatio, Keyframes, ModelName, ModifyMode, Resolution

LumaState = Literal["queued", "dreaming", "completed", "failed"]
"""Luma has no cancelled state: a cancelled generation reads ``failed``."""


class LumaAssets(ResponseModel):
    """Signed, expiring file URLs; ``progress_video`` only while dreaming."""

    video: str | None
    image: str | None
    progress_video: str | None


class LumaConceptOut(ResponseModel):
    key: str


class LumaVideoRequestOut(ControlsOut):
    """What a video generation was asked for (the SDK's ``GenerationRequest``)."""

    generation_type: Literal["video"]
    model: ModelName
    prompt: str
    aspect_ratio: AspectRatio
    resolution: Resolution
    duration: str
    """``5s`` or ``9s`` from Luma; other whole lengths (``1s`` .. ``20s``) from dialects that ask for them
    (OpenAI's ``seconds``). The SDK types it ``Literal["5s", "9s"] | str``."""
    loop: bool
    keyframes: Keyframes | None
    concepts: list[LumaConceptOut] | None
    callback_url: str | None


class LumaUpscaleRequestOut(ResponseModel):
    """What an upscale was asked for (the SDK's ``RequestUpscaleVideoGenerationRequest``)."""

    generation_type: Literal["upscale_video"]
    resolution: Resolution
    callback_url: str | None


class LumaMediaOut(ResponseModel):
    url: str
    """As submitted, except that this server's own file URL of a clip reads ``generation:<id>`` (an upload's,
    ``upload:<id>``): the reference the edit was made from."""


class LumaModifyRequestOut(ControlsOut):
    """What a modify was asked for (the SDK's ``RequestModifyVideoRequest``)."""

    generation_type: Literal["modify_video"]
    model: ModelName
    prompt: str | None
    mode: ModifyMode
    media: LumaMediaOut
    first_frame: LumaMediaOut | None
    resolution: Resolution | None
    """Extension: the output resolution asked for; null: the source's resolution class."""
    callback_url: str | None


class LumaReframeRequestOut(ControlsOut):
    """What a reframe was asked for (the SDK's ``RequestReframeVideoRequest``)."""

    generation_type: Literal["reframe_video"]
    model: ModelName
    prompt: str | None
    aspect_ratio: AspectRatio
    media: LumaMediaOut
    first_frame: LumaMediaOut | None
    resolution: Resolution | None
    """Extension: the output resolution asked for; null: the source's resolution class."""
    grid_position_x: int | None
    grid_position_y: int | None
    x_start: int | None
    x_end: int | None
    y_start: int | None
    y_end: int | None
    resized_width: int | None
    resized_height: int | None
    callback_url: str | None


class LumaAudioRequestOut(ControlsOut):
    """What an ``add_audio`` was asked for (the SDK's ``RequestAudioGenerationRequest``; its ``negative_prompt`` is
    the extension field's)."""

    generation_type: Literal["add_audio"]
    prompt: str | None
    callback_url: str | None


LumaRequestOut = Annotated[
    LumaVideoRequestOut | LumaUpscaleRequestOut | LumaModifyRequestOut | LumaReframeRequestOut | LumaAudioRequestOut,
    Field(discriminator="generation_type"),
]


class LumaGeneration(ResponseModel):
    """The Generation object: returned by create, get, list and upscale, and POSTed to ``callback_url``."""

    id: str
    generation_type: Literal["video"]
    state: LumaState
    failure_reason: str | None
    created_at: str
    """ISO 8601, UTC, ``Z``."""
    model: ModelName
    assets: LumaAssets | None
    request: LumaRequestOut
    seed: int
    """Extension: the noise seed the generation used; send it back as ``seed`` to make the same clip again."""
    progress: float
    """Extension: the share of the denoising steps done, 0 to 1 (1 once completed)."""
    queue_position: int | None
    """Extension: on a GET of one queued generation, how many jobs run before it (0: it is next); else null."""


class LumaGenerationList(ResponseModel):
    generations: list[LumaGeneration]
    """Newest first."""
    count: int
    has_more: bool
    limit: int
    offset: int


class LumaCredits(ResponseModel):
    credit_balance: float


class LumaPing(ResponseModel):
    message: str


ERRORS = error_responses(DetailError)
"""Luma's error body, ``{"detail": "<message>"}``, on every route."""
