"""Backend for LTX-Video checkpoints through diffusers' ``LTXConditionPipeline``.

The condition pipeline (rather than ``LTXPipeline``) is used because it serves plain text-to-video
when given no ``conditions`` and also accepts image/video keyframes later, with the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import LTXConditionPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image

from dreamreel.engine.backends.base import CancelCheck, EditGuide, PreviewSink, StepCallback
from dreamreel.engine.backends.common import (
    CheckpointDefaults,
    DType,
    LatentHold,
    MemoryPlanner,
    check_condition_pixels,
    check_plan,
    denoise,
    edit_noise,
    encode_video,
    latent_mask,
    load_pipeline,
    steps_run,
    to_uint8,
    torch_dtype,
)
from dreamreel.engine.model_dir import read_settings
from dreamreel.engine.plan import NativeGrid, Plan

PIPELINE_SIZE_MULTIPLE = 32
"""``LTXConditionPipeline.check_inputs`` rejects heights/widths not divisible by 32, whatever the VAE."""

LTX_DEFAULTS = CheckpointDefaults(short_side=512, fps=24, max_frames=257, num_inference_steps=50,
                                  guidance_scale=3.0, max_sequence_length=256)
"""Fallbacks when ``dreamreel.json`` is absent: LTX-Video's published defaults (256 prompt tokens is the
pipeline's default; small models train on fewer)."""


class LTXConditionBackend:
    """A loaded ``LTXConditionPipeline`` that turns a :class:`Plan` into native-size uint8 frames."""

    name = "ltx-condition"

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: DType = "float32",
                 settings: Mapping[str, Any] | None = None, memory_budget_gb: float | None = None) -> None:
        """Load the pipeline from a local diffusers directory (never downloads).

        ``dtype`` is float32 or bfloat16 only. float16 is not offered: LTX-Video is published in
        bfloat16, its T5 v1.1 text encoder is known to overflow in float16, and CPUs without
        native half-precision kernels run it far slower than bfloat16.

        A ``dreamreel.json`` with a non-empty ``rope`` is refused (``ValueError``): such a checkpoint is a
        lab experiment trained with a non-stock rotary position embedding, which the service does not set up.

        ``settings`` stands in for ``model_dir``'s parsed ``dreamreel.json`` (``None``: read it from there).
        Why an override: it is the smallest way for the lab, which sets such a checkpoint up itself
        (``dreamreel-lab eval`` passes the file minus ``rope``, then tunes ``pipe.transformer``), to run the
        very backend the service runs: no copy of the weights, and no lab code or rope handling in the service.

        ``memory_budget_gb``: GPU memory the model may use; each request then runs under the cheapest memory
        plan that fits it (:class:`~dreamreel.engine.backends.common.MemoryPlanner`). None: all resident.
        """
        self.dtype = torch_dtype(dtype)
        self.model_dir = Path(model_dir)
        self.device = torch.device(device)
        settings = read_settings(self.model_dir) if settings is None else settings
        if settings.get("rope"):
            raise ValueError(
                f"{self.model_dir}: dreamreel.json sets a rotary position embedding ('rope'): a lab-trained "
                "experiment with a non-stock position embedding, which the service does not serve "
                "(`dreamreel-lab eval` loads it)"
            )
        self._defaults = LTX_DEFAULTS.updated(settings)
        self.default_steps: int = self._defaults.num_inference_steps
        self.default_guidance: float = self._defaults.guidance_scale
        self.loop_on_image: str = self._defaults.loop_on_image
        self.camera_moves: str = self._defaults.camera_moves
        self.modify_strengths: tuple[float, ...] = self._defaults.modify_strengths

        self.pipe: LTXConditionPipeline = load_pipeline(LTXConditionPipeline, self.model_dir, dtype)
        self.memory = MemoryPlanner(self.name, self.model_dir, dtype, self.device, memory_budget_gb)
        self.memory.place(self.pipe, PIPELINE_SIZE_MULTIPLE)
        self._grid = self._compute_grid()

    def _compute_grid(self) -> NativeGrid:
        pipe = self.pipe
        spatial = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        # Exact for patch_size_t == 1, which every LTX-Video checkpoint uses.
        temporal = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        return self._defaults.grid(size_multiple=math.lcm(spatial, PIPELINE_SIZE_MULTIPLE), frame_multiple=temporal)

    def native_grid(self) -> NativeGrid:
        """Native sizes: sides multiples of ``size_multiple``, ``frame_multiple*k+1`` frames."""
        return self._grid

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None, guide: EditGuide | None = None,
    ) -> np.ndarray:
        """Generate ``plan``; uint8 frames shaped (native_frames, native_height, native_width, 3).

        ``conditions`` holds the pixels of ``plan.conditions`` in order, each ``(num_frames, h, w, 3)``
        uint8 at native size: each becomes an ``LTXVideoCondition`` (``image=`` for one frame, ``video=``
        for a clip) at its ``frame_index``, strength 1.

        Raises :class:`GenerationCancelled` as soon as ``should_cancel()`` is true after a step, from inside
        the step callback (:func:`~dreamreel.engine.backends.common.denoise`), so the VAE decode (about
        85 % of a float32 tiny-model run) does not run for output nobody wants.

        A video edit (``guide``): modify starts part-way through the schedule from the source's latents (the
        pipeline's own ``latents`` + ``denoise_strength``); reframe holds the packed latents to the canvas's
        under the mask after every step (:class:`~dreamreel.engine.backends.common.LatentHold`).
        """
        check_plan(plan, self._grid)
        inputs: dict[str, Any] = {"conditions": self._conditions(plan, conditions), "frame_rate": plan.native_fps}
        hook, total = None, None
        if guide is not None:
            inputs, hook, total = self._edit_inputs(plan, guide, inputs)
        self.memory.prepare(self.pipe, plan)
        return denoise(self.pipe, plan, inputs, on_step=on_step, should_cancel=should_cancel, preview=preview,
                       decode_preview=lambda latents: self._decode_preview(latents, plan),
                       max_sequence_length=self._defaults.max_sequence_length, step_hook=hook, total_steps=total)

    def round_trip(self, frames: np.ndarray) -> np.ndarray:
        """The VAE's copy of ``frames``, decoded as the pipeline decodes (``decode_timestep`` 0, no decode noise)."""
        vae = self.pipe.vae
        with torch.inference_mode():
            latents = encode_video(self.pipe, frames, self.device)
            timestep = torch.zeros(1, device=latents.device, dtype=latents.dtype) if vae.config.timestep_conditioning \
                else None
            video = vae.decode(latents.to(vae.dtype), timestep, return_dict=False)[0]
        return to_uint8(np.asarray(self.pipe.video_processor.postprocess_video(video, output_type="np")[0]))

    def _edit_inputs(
        self, plan: Plan, guide: EditGuide, inputs: dict[str, Any],
    ) -> tuple[dict[str, Any], LatentHold | None, int | None]:
        pipe = self.pipe
        with torch.inference_mode():
            x0 = encode_video(pipe, guide.frames, self.device)
            x0 = pipe._normalize_latents(x0, pipe.vae.latents_mean, pipe.vae.latents_std).float()
        if guide.mask is None:  # modify: the pipeline starts part-way from x0 noised to that step's level
            runs = steps_run(plan.num_inference_steps, guide.strength)
            # LTXConditionPipeline runs int(steps * denoise_strength) steps: ask for the middle of that step.
            strength = 1.0 if runs >= plan.num_inference_steps else (runs + 0.5) / plan.num_inference_steps
            return inputs | {"latents": x0, "denoise_strength": strength}, None, runs
        mask = latent_mask(guide.mask, x0.shape, free_first_frame=guide.free_first_frame).to(x0.device)
        patch, patch_t = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        packed_mask = pipe._pack_latents(mask, patch, patch_t).mean(dim=-1, keepdim=True)
        hold = LatentHold(pipe._pack_latents(x0, patch, patch_t),
                          pipe._pack_latents(edit_noise(x0, plan.seed), patch, patch_t), packed_mask)
        return inputs, hold, None

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
        check_condition_pixels(plan, pixels)
        if not pixels:
            return None
        result = []
        for condition, frames in zip(plan.conditions, pixels, strict=True):
            images = [Image.fromarray(frame) for frame in frames]
            if condition.kind == "image":
                result.append(LTXVideoCondition(image=images[0], frame_index=condition.frame_index))
            else:
                result.append(LTXVideoCondition(video=images, frame_index=condition.frame_index))
        return result
