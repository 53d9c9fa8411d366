"""Backend for LTX-Video checkpoints through diffusers' ``LTXConditionPipeline``.

The condition pipeline (rather than ``LTXPipeline``) is used because it serves plain text-to-video
when given no ``conditions`` and also accepts image/video keyframes later, with the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import LTXConditionPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image

from dreamreel.engine.backends.base import CancelCheck, GenerationCancelled, PreviewSink, StepCallback
from dreamreel.engine.backends.common import DType, quiet_library_logs, to_uint8, torch_dtype
from dreamreel.engine.plan import NativeGrid, Plan
from dreamreel.engine.registry import read_settings

PIPELINE_SIZE_MULTIPLE = 32
"""``LTXConditionPipeline.check_inputs`` rejects heights/widths not divisible by 32, whatever the VAE."""

DEFAULT_SHORT_SIDE = 512
DEFAULT_FPS = 24
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 3.0
"""Fallbacks when ``dreamreel.json`` is absent: LTX-Video's published defaults."""

MAX_FRAMES = 257
DEFAULT_MAX_SEQUENCE_LENGTH = 256
"""Prompt tokens the text encoder reads (the pipeline's default; small models train on fewer)."""

ROPE_KEYS = frozenset({"theta", "base_num_frames", "base_height", "base_width"})
"""Attributes of ``LTXVideoRotaryPosEmbed`` that ``dreamreel.json``'s ``rope`` may set."""


class LTXConditionBackend:
    """A loaded ``LTXConditionPipeline`` that turns a :class:`Plan` into native-size uint8 frames."""

    name = "ltx-condition"

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: DType = "float32") -> None:
        """Load the pipeline from a local diffusers directory (never downloads).

        ``dtype`` is float32 or bfloat16 only. float16 is not offered: LTX-Video is published in
        bfloat16, its T5 v1.1 text encoder is known to overflow in float16, and CPUs without
        native half-precision kernels run it far slower than bfloat16.
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
        self._max_frames = int(settings.get("max_frames", MAX_FRAMES))
        self._max_sequence_length = int(settings.get("max_sequence_length", DEFAULT_MAX_SEQUENCE_LENGTH))

        self.pipe: LTXConditionPipeline = LTXConditionPipeline.from_pretrained(
            self.model_dir, dtype=self.dtype, local_files_only=True
        )
        tune_rope(self.pipe.transformer, settings.get("rope"))
        self.pipe.to(self.device)
        # Jobs report progress through on_step; a tqdm bar per job would only clutter worker logs.
        self.pipe.set_progress_bar_config(disable=True)
        self._grid = self._compute_grid()

    def _compute_grid(self) -> NativeGrid:
        pipe = self.pipe
        spatial = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        # Exact for patch_size_t == 1, which every LTX-Video checkpoint uses.
        temporal = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        return NativeGrid(
            short_side=self._short_side,
            size_multiple=math.lcm(spatial, PIPELINE_SIZE_MULTIPLE),
            frame_multiple=temporal,
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
        uint8 at native size: each becomes an ``LTXVideoCondition`` (``image=`` for one frame, ``video=``
        for a clip) at its ``frame_index``, strength 1.

        Raises :class:`GenerationCancelled` as soon as ``should_cancel()`` is true after a step. The
        exception is raised from inside the step callback, which stops diffusers right there: setting
        ``pipe._interrupt`` instead would skip the remaining steps but still run the full VAE decode
        (about 85 % of a float32 tiny-model run) for output nobody wants.
        """
        self._check_plan(plan)
        ltx_conditions = self._conditions(plan, conditions)
        if should_cancel():
            raise GenerationCancelled("cancelled before denoising started")

        total = plan.num_inference_steps

        def step_end(pipe: LTXConditionPipeline, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(i + 1, total)
            if should_cancel():
                raise GenerationCancelled(f"cancelled after step {i + 1}/{total}")
            if preview is not None and i + 1 < total and preview.due(i + 1, total):
                preview.deliver(self._decode_preview(kwargs["latents"], plan))
            return kwargs

        # Noise is drawn on the CPU so a seed gives the same clip whatever the device.
        generator = torch.Generator(device="cpu").manual_seed(plan.seed)
        with torch.inference_mode():
            out = self.pipe(
                conditions=ltx_conditions,
                prompt=plan.prompt,
                height=plan.native_height,
                width=plan.native_width,
                num_frames=plan.native_frames,
                frame_rate=plan.native_fps,
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

    def _decode_preview(self, packed: torch.Tensor, plan: Plan) -> np.ndarray:
        """Decode the current (still noisy) latents as the final decode would, for a progress preview.

        Mirrors the end of ``LTXConditionPipeline.__call__``: conditioning tokens (prepended for clip
        conditions) are dropped by keeping the last ``frames x height x width`` tokens, then unpack,
        denormalise and VAE-decode at ``decode_timestep`` 0 (the pipeline's default).
        """
        pipe = self.pipe
        frames = (plan.native_frames - 1) // pipe.vae_temporal_compression_ratio + 1
        height = plan.native_height // pipe.vae_spatial_compression_ratio
        width = plan.native_width // pipe.vae_spatial_compression_ratio
        latents = pipe._unpack_latents(
            packed[:, -frames * height * width :], frames, height, width,
            pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size,
        )
        vae = pipe.vae
        latents = pipe._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        timestep = None
        if vae.config.timestep_conditioning:
            timestep = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)
        video = vae.decode(latents.to(vae.dtype), timestep, return_dict=False)[0]
        return to_uint8(np.asarray(pipe.video_processor.postprocess_video(video, output_type="np")[0]))

    def _conditions(self, plan: Plan, pixels: Sequence[np.ndarray]) -> list[LTXVideoCondition] | None:
        if len(pixels) != len(plan.conditions):
            raise ValueError(f"plan has {len(plan.conditions)} conditions but {len(pixels)} were resolved")
        if not pixels:
            return None
        result = []
        for condition, frames in zip(plan.conditions, pixels, strict=True):
            expected = (condition.num_frames, plan.native_height, plan.native_width, 3)
            if frames.shape != expected or frames.dtype != np.uint8:
                raise ValueError(f"condition {condition} pixels are {frames.dtype}{frames.shape}, expected {expected}")
            images = [Image.fromarray(frame) for frame in frames]
            if condition.kind == "image":
                result.append(LTXVideoCondition(image=images[0], frame_index=condition.frame_index))
            else:
                result.append(LTXVideoCondition(video=images, frame_index=condition.frame_index))
        return result

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


def tune_rope(transformer: torch.nn.Module, rope: dict[str, float] | None) -> None:
    """Set the rotary position embedding's frequency range and grid scale from ``dreamreel.json``.

    LTX-Video scales positions for its own latent grid (coordinates divided by 2048 px and 20 s,
    frequencies 1 to 10,000) and applies them across the whole hidden width before splitting it into
    heads, so each head gets one band of frequencies. A model trained on another grid can carry
    its own values; ``None`` (every published checkpoint) keeps the stock embedding. The values live
    outside ``config.json`` because the stock class hard-codes them there.
    """
    if not rope:
        return
    unknown = set(rope) - ROPE_KEYS
    if unknown:
        raise ValueError(f"unknown rope settings {sorted(unknown)}; allowed: {sorted(ROPE_KEYS)}")
    for key, value in rope.items():
        setattr(transformer.rope, key, float(value))
