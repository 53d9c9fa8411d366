"""Backend for Wan VACE checkpoints through diffusers' ``WanVACEPipeline`` (family ``wan-vace``).

VACE conditions a clip with a ``video`` and a ``mask``, one frame each per generated frame, instead of
keyframe objects: a black mask frame keeps that frame's pixels, a white one lets the model generate it.
So every control the planner lays out (start/end image, extend, reverse-extend, interpolate, loop on
an image) is the same operation here: copy the condition's pixels into the video at its frame indices
and black out the mask there (:func:`vace_inputs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import WanVACEPipeline
from PIL import Image

from dreamreel.engine.backends.base import CancelCheck, GenerationCancelled, PreviewSink, StepCallback
from dreamreel.engine.backends.common import DType, quiet_library_logs, to_uint8, torch_dtype
from dreamreel.engine.plan import NativeGrid, Plan
from dreamreel.engine.registry import read_settings

DEFAULT_SHORT_SIDE = 480
DEFAULT_FPS = 16
DEFAULT_MAX_FRAMES = 81
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 5.0
"""Fallbacks when ``dreamreel.json`` is absent: Wan 2.1 VACE's published 480p defaults (832x480, 81 frames
at 16 fps, 50 steps, guidance 5)."""

DEFAULT_MAX_SEQUENCE_LENGTH = 512
"""Prompt tokens the UMT5 encoder reads (the pipeline's default; small models may read fewer)."""

GRAY = 128
"""Pixel value of frames the model should generate. VACE's own code fills them with 0 in [-1, 1] (127.5);
PIL frames are 8-bit, and diffusers' ``WanVACEPipeline`` example uses 128 for them (its comment: "Ideally,
this should be 127.5 to match original code"), 1/255 off zero after normalisation. The pipeline also
multiplies the video by the mask before encoding, so these pixels only reach the model as the
"reactive" (to-generate) stream, which VACE trained on near-zero there."""
KEEP, GENERATE = 0, 255
"""Mask values (8-bit, mode ``L``): black = condition on these pixels, white = generate them (the
pipeline thresholds the mask at 0.5 after mapping it to [0, 1])."""


def vace_inputs(plan: Plan, pixels: Sequence[np.ndarray]) -> tuple[list[Image.Image], list[Image.Image]]:
    """``(video, mask)`` for ``WanVACEPipeline``: one RGB and one ``L`` image per native frame of ``plan``.

    ``pixels`` holds the resolved frames of ``plan.conditions`` in order, each ``(num_frames, h, w, 3)``
    uint8 at native size. A condition's frames land at ``frame_index ..`` with a black mask; every other
    frame is :data:`GRAY` with a white mask. Where conditions overlap, the later one wins (the planner
    never overlaps them on a valid grid).
    """
    if len(pixels) != len(plan.conditions):
        raise ValueError(f"plan has {len(plan.conditions)} conditions but {len(pixels)} were resolved")
    shape = (plan.native_frames, plan.native_height, plan.native_width, 3)
    video = np.full(shape, GRAY, dtype=np.uint8)
    mask = np.full(shape[:3], GENERATE, dtype=np.uint8)
    for condition, frames in zip(plan.conditions, pixels, strict=True):
        expected = (condition.num_frames, plan.native_height, plan.native_width, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise ValueError(f"condition {condition} pixels are {frames.dtype}{frames.shape}, expected {expected}")
        start, stop = condition.frame_index, condition.frame_index + condition.num_frames
        if start < 0 or stop > plan.native_frames:
            raise ValueError(f"condition {condition} does not fit in {plan.native_frames} native frames")
        video[start:stop] = frames
        mask[start:stop] = KEEP
    return [Image.fromarray(frame) for frame in video], [Image.fromarray(frame) for frame in mask]


class WanVACEBackend:
    """A loaded ``WanVACEPipeline`` that turns a :class:`Plan` into native-size uint8 frames."""

    name = "wan-vace"

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: DType = "float32") -> None:
        """Load the pipeline from a local diffusers directory (never downloads).

        ``dtype`` is float32 or bfloat16 (see :data:`dreamreel.engine.backends.common.DTYPES`).
        """
        self.dtype = torch_dtype(dtype)
        self.model_dir = Path(model_dir)
        self.device = torch.device(device)

        quiet_library_logs()
        settings = read_settings(self.model_dir)
        self.default_steps: int = int(settings.get("num_inference_steps", DEFAULT_STEPS))
        self.default_guidance: float = float(settings.get("guidance_scale", DEFAULT_GUIDANCE))
        self._short_side = int(settings.get("short_side", DEFAULT_SHORT_SIDE))
        self._fps = int(settings.get("fps", DEFAULT_FPS))
        self._max_frames = int(settings.get("max_frames", DEFAULT_MAX_FRAMES))
        self._max_sequence_length = int(settings.get("max_sequence_length", DEFAULT_MAX_SEQUENCE_LENGTH))

        self.pipe: WanVACEPipeline = WanVACEPipeline.from_pretrained(
            self.model_dir, dtype=self.dtype, local_files_only=True
        )
        if self.pipe.transformer is None:
            raise ValueError(f"{self.model_dir} has no transformer (two-stage Wan 2.2 exports are not supported)")
        self.pipe.to(self.device)
        # Jobs report progress through on_step; a tqdm bar per job would only clutter worker logs.
        self.pipe.set_progress_bar_config(disable=True)
        self._grid = self._compute_grid()

    def _compute_grid(self) -> NativeGrid:
        pipe = self.pipe
        patch_t, patch_h, patch_w = pipe.transformer.config.patch_size
        return NativeGrid(
            short_side=self._short_side,
            # Wan: VAE 8 x patch 2 = 16 px (``check_inputs`` enforces exactly this multiple).
            size_multiple=pipe.vae_scale_factor_spatial * math.lcm(patch_h, patch_w),
            # Wan: causal VAE ratio 4; exact for patch_t == 1, which every Wan checkpoint uses.
            frame_multiple=pipe.vae_scale_factor_temporal * patch_t,
            fps=self._fps,
            max_frames=self._max_frames,
        )

    def native_grid(self) -> NativeGrid:
        """Native sizes: sides multiples of ``size_multiple``, ``frame_multiple*k+1`` frames."""
        return self._grid

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None,
    ) -> np.ndarray:
        """Generate ``plan``; uint8 frames shaped (native_frames, native_height, native_width, 3).

        ``conditions`` holds the pixels of ``plan.conditions`` in order, each ``(num_frames, h, w, 3)``
        uint8 at native size; they become VACE's ``video``/``mask`` (:func:`vace_inputs`). Without
        conditions the video is all gray and the mask all white: plain text-to-video.

        Raises :class:`GenerationCancelled` as soon as ``should_cancel()`` is true after a step, from
        inside the step callback, so neither the remaining steps nor the VAE decode run. ``preview``,
        when given, receives the current latents decoded as the final clip would be.
        """
        self._check_plan(plan)
        video, mask = vace_inputs(plan, conditions)
        if should_cancel():
            raise GenerationCancelled("cancelled before denoising started")

        total = plan.num_inference_steps

        def step_end(pipe: WanVACEPipeline, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(i + 1, total)
            if should_cancel():
                raise GenerationCancelled(f"cancelled after step {i + 1}/{total}")
            if preview is not None and i + 1 < total and preview.due(i + 1, total):
                preview.deliver(self._decode_preview(kwargs["latents"]))
            return kwargs

        # Noise is drawn on the CPU so a seed gives the same clip whatever the device.
        generator = torch.Generator(device="cpu").manual_seed(plan.seed)
        with torch.inference_mode():
            out = self.pipe(
                prompt=plan.prompt,
                video=video,
                mask=mask,
                height=plan.native_height,
                width=plan.native_width,
                num_frames=plan.native_frames,
                num_inference_steps=plan.num_inference_steps,
                guidance_scale=plan.guidance_scale,
                generator=generator,
                output_type="np",
                callback_on_step_end=step_end,
                max_sequence_length=self._max_sequence_length,
            )
        frames = np.asarray(out.frames[0])  # (F, H, W, 3) float32 in [0, 1]
        expected = (plan.native_frames, plan.native_height, plan.native_width, 3)
        if frames.shape != expected:
            raise RuntimeError(f"pipeline returned frames shaped {frames.shape}, expected {expected}")
        return to_uint8(frames)

    def _decode_preview(self, latents: torch.Tensor) -> np.ndarray:
        """Decode the current (still noisy) latents as the end of ``WanVACEPipeline.__call__`` does.

        No reference images are passed, so no latent frames are prepended to drop; the latents are
        denormalised with the VAE's per-channel mean/std and decoded.
        """
        vae = self.pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, vae.dtype)
        std = torch.tensor(vae.config.latents_std).view(shape).to(latents.device, vae.dtype)
        video = vae.decode(latents.to(vae.dtype) * std + mean, return_dict=False)[0]
        return to_uint8(np.asarray(self.pipe.video_processor.postprocess_video(video, output_type="np")[0]))

    def _check_plan(self, plan: Plan) -> None:
        """Reject sizes the pipeline would silently round (frames) or reject late (sides)."""
        grid = self._grid
        if plan.native_width % grid.size_multiple or plan.native_height % grid.size_multiple:
            size = f"{plan.native_width}x{plan.native_height}"
            raise ValueError(f"native size {size} is not a multiple of {grid.size_multiple}")
        if (plan.native_frames - 1) % grid.frame_multiple or not 1 <= plan.native_frames <= grid.max_frames:
            raise ValueError(
                f"native_frames {plan.native_frames} is not {grid.frame_multiple}*k+1 <= {grid.max_frames}"
            )
        if plan.num_inference_steps < 1:
            raise ValueError("num_inference_steps must be at least 1")
