"""What a generation costs: integer milli-units from the delivered pixels x seconds, one formula for all.

A 540p 16:9 5 s clip (960x540, 5 s) costs exactly 1000 milli-units (one unit); anything else costs its
pixel-seconds in proportion, rounded to the nearest milli-unit. The same formula prices every kind of work
(new clips, extends, loops, upscales — an upscale is billed at its target size — and edits), so prices follow
the work a GPU does rather than a table of products. docs/security.md has the table for Ray 2's sizes.

The ledger (``core.jobstore``) holds one ``reserve`` per generation at submit, then exactly one ``release``
of it when the generation ends, plus one ``charge`` when it completed: so a failed or cancelled generation
costs nothing, and a retry of a job never bills twice.
"""

from __future__ import annotations

import math
from enum import StrEnum

from dreamreel.core.request import GenerationRequest

REFERENCE_PIXEL_SECONDS = 960 * 540 * 5
"""A 540p 16:9 clip of 5 s: one unit."""

MILLI_PER_UNIT = 1000


class Entry(StrEnum):
    RESERVE = "reserve"
    """At submit: the cost of the requested clip is set aside from the key's balance."""
    RELEASE = "release"
    """When the generation ends, whatever its outcome: the reservation is lifted."""
    CHARGE = "charge"
    """When it completed: the cost of the delivered clip."""


def cost_milli(width: int, height: int, seconds: int) -> int:
    """Milli-units for ``seconds`` of ``width`` x ``height`` video, rounded half up."""
    numerator = MILLI_PER_UNIT * width * height * seconds
    return (2 * numerator + REFERENCE_PIXEL_SECONDS) // (2 * REFERENCE_PIXEL_SECONDS)


def request_cost(request: GenerationRequest) -> int:
    """What a request will cost when delivered at the size its aspect ratio and resolution name."""
    width, height = request.output_size
    return cost_milli(width, height, request.duration_s)


def delivered_cost(request: GenerationRequest, width: int, height: int, frames: int, fps: float) -> int:
    """What a completed generation is charged: its delivered size for the seconds it was asked for, or, for an
    edit (whose length is its source's, unknown before a URL source is fetched), the delivered seconds rounded
    up; an extension's delivered source clips are not billed again."""
    seconds = request.duration_s
    if request.edit is not None and fps > 0:
        seconds = max(1, math.ceil(frames / fps - 0.05))
    return cost_milli(width, height, seconds)


def units(milli: int) -> float:
    """Milli-units as the decimal units the dialects report (``credit_balance``, ``credits_used``)."""
    return milli / MILLI_PER_UNIT
