"""What each model family can do; requests asking for more are refused before they are queued.

Refusing at submission (a 4xx) beats accepting a job that can only fail later in a worker. The table
maps backend families to the conditioning controls they implement, so a model that cannot honour a
control gets a 422 naming the model and the control.

Mapping to real families (see docs/architecture.md):

* ``ltx-condition`` - diffusers ``LTXConditionPipeline``: images via ``LTXVideoCondition(image=..,
  frame_index=0 | N-1)``, clips via ``LTXVideoCondition(video=.., frame_index=0 | N-k)``. Everything.
* ``wan-i2v`` - Wan 2.x image-to-video: first frame only (loop by blending).
* ``wan-flf2v`` - Wan 2.1 first-last-frame-to-video: first and/or last frame, loop by blending.
* ``wan-vace`` - diffusers ``WanVACEPipeline``: a ``video`` and a ``mask`` with one frame each per native
  frame; a condition's pixels sit at its frames (images at 0 | N-1, clips at 0.. | N-k..) under a black
  (keep) mask, every other frame is gray (VACE's empty) under a white (generate) mask. Everything.
* ``wan-t2v`` - text-to-video only (loop by blending).
``ltx-condition`` and ``wan-vace`` have backends (``engine/backends``); the other Wan rows document the
mapping for when they land. The server passes each public name's family, read from the model directory's
``dreamreel.json``, to :func:`check_supported`; ``DEFAULT_FAMILIES`` only serves callers that pass none.
"""

from __future__ import annotations

from collections.abc import Mapping

from dreamreel.core.concepts import resolve_concepts
from dreamreel.core.conditioning import Control, controls_of
from dreamreel.core.errors import NotSupported
from dreamreel.core.request import GenerationRequest

ALL_CONTROLS = frozenset(Control)

FAMILY_CONTROLS: dict[str, frozenset[Control]] = {
    "ltx-condition": ALL_CONTROLS,
    "wan-t2v": frozenset({Control.LOOP}),
    "wan-i2v": frozenset({Control.START_IMAGE, Control.LOOP}),
    "wan-flf2v": frozenset({Control.START_IMAGE, Control.END_IMAGE, Control.LOOP}),
    "wan-vace": ALL_CONTROLS,
}

DEFAULT_FAMILIES: dict[str, str] = {"ray-2": "ltx-condition", "ray-flash-2": "ltx-condition"}


def check_supported(request: GenerationRequest, families: Mapping[str, str] | None = None) -> None:
    """Raise ``NotSupported`` naming the first field this server cannot honour for ``request.model``."""
    family = (families or DEFAULT_FAMILIES).get(request.model, "ltx-condition")
    supported = FAMILY_CONTROLS.get(family, frozenset())
    for control in controls_of(request):
        if control not in supported:
            raise NotSupported(
                f"model {request.model} ({family}) does not support {control.value} ({control.field})",
                field=control.field,
            )
    resolve_concepts(request.concepts)
