"""What this server can do today; requests asking for more are refused before they are queued.

Refusing at submission (a 4xx) beats accepting a job that can only fail later in a worker.
"""

from __future__ import annotations

from dreamreel.core.concepts import resolve_concepts
from dreamreel.core.errors import NotSupported
from dreamreel.core.request import GenerationRequest


def check_supported(request: GenerationRequest) -> None:
    """Raise ``NotSupported`` naming the first field this server cannot honour yet."""
    if request.keyframes is not None and (request.keyframes.frame0 or request.keyframes.frame1):
        raise NotSupported("keyframes (image-to-video, extend, interpolate) are not supported yet", field="keyframes")
    if request.loop:
        raise NotSupported("loop is not supported yet", field="loop")
    resolve_concepts(request.concepts)
