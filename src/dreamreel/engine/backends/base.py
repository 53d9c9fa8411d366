"""The contract every model-family adapter fulfils."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from dreamreel.engine.plan import NativeGrid, Plan

StepCallback = Callable[[int, int], None]
"""Called after each denoising step with (steps_done, steps_total)."""

CancelCheck = Callable[[], bool]
"""Returns True when the job should stop (cancelled, or the lease was lost)."""


class PreviewSink(Protocol):
    """Receives low-res previews of the clip while it is denoised (Luma's ``progress_video``).

    The backend asks ``due`` after each step (cheap) and only then pays for decoding the current latents,
    so the sink alone decides how often previews are made and bounds their cost.
    """

    def due(self, step: int, total: int) -> bool: ...

    def deliver(self, frames: np.ndarray) -> None:
        """``frames``: uint8 ``(native_frames, native_height, native_width, 3)`` decoded from the current latents."""
        ...


class GenerationCancelled(Exception):
    """The cancel check returned True (while denoising, decoding or delivering frames); no output was produced."""


class Backend(Protocol):
    """A loaded model that turns a plan into native-size frames."""

    name: str
    """The model family (``core.capabilities``): what the planner may ask of this backend."""
    default_steps: int
    """Denoising steps this checkpoint is meant to run with."""
    default_guidance: float
    loop_on_image: str
    """``keyframe`` or ``fade``: how a loop on a start image closes where the family can pin its last frame
    (``backends.common.CheckpointDefaults.loop_on_image``)."""
    camera_moves: str
    """``prompt`` or ``virtual``: how a camera concept moves the camera
    (``backends.common.CheckpointDefaults.camera_moves``)."""

    def native_grid(self) -> NativeGrid:
        """Sizes this loaded checkpoint can generate."""
        ...

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None,
    ) -> np.ndarray:
        """Run the model; return uint8 frames shaped (native_frames, native_height, native_width, 3).

        ``conditions`` are the resolved pixels of ``plan.conditions``, in order (native size)."""
        ...
