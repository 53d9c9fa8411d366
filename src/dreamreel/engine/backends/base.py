"""The contract every model-family adapter fulfils."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dreamreel.engine.plan import NativeGrid, Plan

StepCallback = Callable[[int, int], None]
"""Called after each denoising step with (steps_done, steps_total)."""

TRANSFORMER_ATTRS = ("transformer", "transformer_2")
"""Pipeline attributes holding a denoising transformer (Wan 2.2 A14B has two experts, ``transformer_2``): what
step caches (``engine/step_cache.py``) and regional compilation (``engine/compile.py``) are put on."""

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


@dataclass(frozen=True)
class EditGuide:
    """What a video edit holds the denoising to (``engine/edit.py``): the source, or a canvas with the source
    placed in it, as native frames, and where and from how far it is held.

    * **modify** (``mask`` None): the denoising starts from the source's latents noised to the level the first
      ``1 - strength`` of the schedule would leave (SDEdit), so ``strength`` is the share of the model's
      own schedule that runs: small stays close to the source, 1.0 ignores it.
    * **reframe** (``mask`` set, ``strength`` 1.0): from pure noise; after every step the latents where the
      mask is 1 are replaced by the canvas's latents noised to the step's level, blended by the mask (which is
      fractional at the window's border), so the model generates only the outside and joins it to the inside.
    """

    frames: np.ndarray
    """``(native_frames, native_height, native_width, 3)`` uint8: the source (modify) or the canvas (reframe)."""
    strength: float = 1.0
    mask: np.ndarray | None = None
    """``(native_height, native_width)`` float32 in [0, 1]: 1 where the canvas shows the source."""
    free_first_frame: bool = False
    """Frame 0 is a condition of its own (an edit's ``first_frame``): not held to the canvas."""
    sound_only: bool = False
    """An ``add_audio``: the picture is ``frames``, held exactly (every latent frame, at every step) while only the
    sound is made; only a backend that makes sound (:attr:`Backend.last_audio`) is given one."""


class GenerationCancelled(Exception):
    """The cancel check returned True (while denoising, decoding or delivering frames); no output was produced."""


class Backend(Protocol):
    """A loaded model that turns a plan into native-size frames.

    A family that makes sound with its video (``ltx2``) also has an attribute ``last_audio``
    (:class:`~dreamreel.media.audio.AudioTrack` or None): the track of its latest :meth:`generate`, in real time
    over the native clip (``native_frames / native_fps`` seconds), set by every call. It is an attribute read
    with ``getattr(backend, "last_audio", None)`` rather than part of ``generate``'s result, so the silent
    families are untouched; a worker runs one job at a time per backend, so the latest call is the job's."""

    name: str
    """The model family (``core.capabilities``): what the planner may ask of this backend."""
    pipe: Any
    """The loaded diffusers pipeline: what LoRAs (``engine/lora.py``) and step caches (``engine/step_cache.py``)
    are put on for one job."""
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

    modify_strengths: tuple[float, ...]
    """The :class:`EditGuide` strength of each of the nine modify modes, from ``adhere_1`` to ``reimagine_3``
    (``backends.common.CheckpointDefaults.modify_strengths``)."""

    def round_trip(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (uint8, native size, a valid native frame count) through the VAE and back: the model's own
        copy of a source, what a modify that changed nothing would decode to (``engine/edit.py``)."""
        ...

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None, guide: EditGuide | None = None,
    ) -> np.ndarray:
        """Run the model; return uint8 frames shaped (native_frames, native_height, native_width, 3).

        ``conditions`` are the resolved pixels of ``plan.conditions``, in order (native size); ``guide``, for
        a video edit, what the latents are held to."""
        ...
