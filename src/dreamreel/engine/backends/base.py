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


class GenerationCancelled(Exception):
    """The cancel check returned True during denoising; no output was produced."""


class Backend(Protocol):
    """A loaded model that turns a plan into native-size frames."""

    name: str
    default_steps: int
    """Denoising steps this checkpoint is meant to run with."""
    default_guidance: float

    def native_grid(self) -> NativeGrid:
        """Sizes this loaded checkpoint can generate."""
        ...

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = ()
    ) -> np.ndarray:
        """Run the model; return uint8 frames shaped (native_frames, native_height, native_width, 3).

        ``conditions`` are the resolved pixels of ``plan.conditions``, in order (native size)."""
        ...
