"""The registry of external API dialects: one module each, one line each here.

Order matters only for routing: fal's queue routes match generic ``/{owner}/{alias}/requests/...``
paths, so fal is mounted last.
"""

from __future__ import annotations

from dreamreel.api.dialects import aiml, fal, luma, openai
from dreamreel.api.dialects.base import Dialect

DIALECTS: tuple[Dialect, ...] = (
    luma.DIALECT,
    aiml.DIALECT,
    openai.DIALECT,
    fal.DIALECT,
)

BY_NAME: dict[str, Dialect] = {dialect.name: dialect for dialect in DIALECTS}
