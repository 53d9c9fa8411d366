"""Extension fields every dialect's create bodies accept: ``seed``, ``negative_prompt``, ``loras``, ``speed``.

No hosted Ray 2 takes them; open servers' users ask for them (a re-made clip, a steered-away look, an
adapter, a faster draft). One mixin, so the four dialects spell and bound them the same way and their OpenAPI
schemas show them; each dialect renders the seed a generation used back in its own response (``seed``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from dreamreel.api.schema import ResponseModel
from dreamreel.core.request import (
    ADAPTER_NAME_PATTERN,
    MAX_LORA_SCALE,
    MAX_LORAS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    LoraRef,
    Speed,
)


class LoraBody(BaseModel):
    """``{"name": ..., "scale": ...}``: an adapter the model's config lists (``GET /v1/models`` shows them)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(pattern=ADAPTER_NAME_PATTERN, max_length=63)
    scale: StrictFloat | StrictInt | None = Field(default=None, ge=-MAX_LORA_SCALE, le=MAX_LORA_SCALE)
    """Unset: the scale the model's config gives it."""


class ControlFields(BaseModel):
    """The extension fields, mixed into each dialect's create bodies."""

    seed: StrictInt | None = Field(default=None, ge=0, le=MAX_SEED)
    """Extension: the noise seed (the response's ``seed`` says which one a generation used)."""
    negative_prompt: StrictStr | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    """Extension: what the model is steered away from."""
    loras: list[LoraBody] | None = Field(default=None, max_length=MAX_LORAS)
    """Extension: LoRA adapters of the model's config, applied to this request only."""
    speed: Speed | None = None
    """Extension: ``quality``, ``balanced`` or ``fast``; unset: the model's own (``ray-flash-2`` is ``fast``)."""

    def controls(self) -> dict[str, Any]:
        """The fields as ``GenerationRequest`` keywords."""
        return {"seed": self.seed, "negative_prompt": self.negative_prompt, "speed": self.speed,
                "loras": tuple(LoraRef(name=lora.name, scale=lora.scale) for lora in self.loras or ())}


def render_controls(request: Any) -> dict[str, Any]:
    """A request's extension fields as a response echoes them back (null where the request did not set them)."""
    loras = [lora.model_dump() for lora in request.loras] or None
    return {"seed": request.seed, "negative_prompt": request.negative_prompt, "loras": loras, "speed": request.speed}


class LoraOut(ResponseModel):
    name: str
    scale: float | None = None


class ControlsOut(ResponseModel):
    """The extension fields as a response echoes a request back (null where it did not set them)."""

    seed: int | None = None
    negative_prompt: str | None = None
    loras: list[LoraOut] | None = None
    speed: str | None = None
