"""Backend for LTX-Video checkpoints through diffusers' ``LTXConditionPipeline``.

The condition pipeline (rather than ``LTXPipeline``) is used because it serves plain text-to-video
when given no ``conditions`` and also accepts image/video keyframes later, with the same weights.

A checkpoint with a ``latent_upsampler/`` folder (LTX-Video 0.9.7/0.9.8's spatial latent upsampler) generates in
two stages, as those checkpoints are published to run: half size, latents upsampled 2x, then a short refinement
at the full size (:meth:`LTXConditionBackend.generate`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import LTXConditionPipeline, LTXLatentUpsamplePipeline
from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image

from dreamreel.engine.backends.base import CancelCheck, EditGuide, GenerationCancelled, PreviewSink, StepCallback
from dreamreel.engine.backends.common import (
    CheckpointDefaults,
    DType,
    LatentHold,
    MemoryPlanner,
    check_condition_pixels,
    check_plan,
    checked_modules,
    denoise,
    denoise_latents,
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

UPSAMPLER_DIR = "latent_upsampler"
"""The checkpoint's folder holding an ``LTXLatentUpsamplerModel`` (diffusers layout: ``config.json`` + weights)."""


@dataclass(frozen=True)
class TwoStageSettings:
    """The second stage's knobs, from ``dreamreel.json`` (keys ``upsample_*``; ``latent_upsampler: false`` turns
    the stage off). Defaults: diffusers' LTX-Video 0.9.7 dev example (docs/source/en/api/pipelines/ltx_video.md:
    ``denoise_strength=0.4``) and the upsampling pipeline's own (no AdaIN, no tone mapping). The same page runs
    the distilled checkpoints with ``adain_factor=1.0``, and 0.9.8 distilled also with
    ``tone_map_compression_ratio=0.6``: their ``dreamreel.json`` sets them."""

    enabled: bool = True
    denoise_strength: float = 0.4
    """Share of the full-size schedule the refinement re-runs, from the upsampled latents noised to that level."""
    adain_factor: float = 0.0
    tone_map_compression_ratio: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.denoise_strength < 1:
            raise ValueError(f"upsample_denoise_strength must be in (0, 1), got {self.denoise_strength!r}")
        if not 0 <= self.tone_map_compression_ratio <= 1:
            raise ValueError(f"upsample_tone_map_compression_ratio must be in [0, 1], "
                             f"got {self.tone_map_compression_ratio!r}")

    @classmethod
    def read(cls, settings: Mapping[str, Any]) -> TwoStageSettings:
        enabled = settings.get("latent_upsampler", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"latent_upsampler must be true or false, got {enabled!r}")
        return cls(enabled=enabled,
                   denoise_strength=float(settings.get("upsample_denoise_strength", cls.denoise_strength)),
                   adain_factor=float(settings.get("upsample_adain_factor", cls.adain_factor)),
                   tone_map_compression_ratio=float(settings.get("upsample_tone_map_compression_ratio",
                                                                 cls.tone_map_compression_ratio)))


def refine_schedule(steps: int, strength: float) -> tuple[int, int, float]:
    """The refinement of a ``steps``-step plan: ``(steps run, schedule length, denoise_strength asked for)``.

    It runs ``int(steps * strength)`` steps, at least one, at the end of a ``steps``-step schedule, and never the
    whole of one (that would start from pure noise and ignore the upsampled latents): a one-step plan refines on
    the last step of two. ``LTXConditionPipeline`` runs ``int(schedule * denoise_strength)`` steps, so it is asked
    for the middle of that step."""
    runs = steps_run(steps, strength)
    schedule = max(steps, runs + 1)
    return runs, schedule, (runs + 0.5) / schedule


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
        self.two_stage = TwoStageSettings.read(settings)
        self.upsample: LTXLatentUpsamplePipeline | None = self._load_upsampler()

    def _load_upsampler(self) -> LTXLatentUpsamplePipeline | None:
        """The upsampling pipeline over this pipeline's VAE and the checkpoint's upsampler, on the device (its
        weights, about 0.24 GiB in bfloat16, stay there under every memory plan); None without one, or when off."""
        folder = self.model_dir / UPSAMPLER_DIR
        if not self.two_stage.enabled or not folder.is_dir():
            return None
        model = LTXLatentUpsamplerModel.from_pretrained(folder, dtype=self.dtype, local_files_only=True)
        return LTXLatentUpsamplePipeline(vae=self.pipe.vae, latent_upsampler=model.to(self.device))

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

        With a latent upsampler (:attr:`upsample`) every generation but a video edit runs in two stages
        (:meth:`_two_stages`); an edit runs the one stage above at the full size, since its source is held at
        that size (a modify starts from its latents, a reframe pins them after every step).
        """
        check_plan(plan, self._grid)
        inputs: dict[str, Any] = {"conditions": self._conditions(plan, conditions), "frame_rate": plan.native_fps}
        hook, total = None, None
        if guide is not None:
            inputs, hook, total = self._edit_inputs(plan, guide, inputs)
        self.memory.prepare(self.pipe, plan)
        if guide is None and self.upsample is not None:
            return self._two_stages(plan, inputs, on_step, should_cancel, preview)
        return denoise(self.pipe, plan, inputs, on_step=on_step, should_cancel=should_cancel, preview=preview,
                       decode_preview=lambda latents: self._decode_preview(latents, plan),
                       max_sequence_length=self._defaults.max_sequence_length, step_hook=hook, total_steps=total)

    def first_stage_plan(self, plan: Plan) -> Plan:
        """``plan`` at half its native size, each side rounded up to the size multiple (the frames unchanged)."""
        multiple = self._grid.size_multiple

        def half(side: int) -> int:
            return max(1, (side // multiple + 1) // 2) * multiple

        return replace(plan, native_width=half(plan.native_width), native_height=half(plan.native_height))

    def _two_stages(self, plan: Plan, inputs: dict[str, Any], on_step: StepCallback, should_cancel: CancelCheck,
                    preview: PreviewSink | None) -> np.ndarray:
        """LTX-Video's multi-scale run (diffusers' LTX-Video docs, the 0.9.7 example):

        1. all of ``plan``'s steps at half the size (:meth:`first_stage_plan`), ending in latents (no decode);
        2. those latents upsampled 2x by ``LTXLatentUpsamplePipeline``; where the half size was rounded up, resized
           (trilinear) to the native latent grid, the frames untouched;
        3. the refinement at the full size: the last :func:`refine_schedule` steps of the schedule, from the
           upsampled latents noised to that level (the pipeline's ``latents`` + ``denoise_strength``); decoded.

        Both stages get the same conditions (the pipeline resizes keyframe pixels to each stage's size). Progress
        counts both stages' steps in one sequence; cancelling works in each stage and between them; previews come
        from both, the first stage's decoded at half size and scaled up to the native size.
        """
        assert self.upsample is not None
        small = self.first_stage_plan(plan)
        first = plan.num_inference_steps
        refine_steps, schedule, strength = refine_schedule(first, self.two_stage.denoise_strength)
        total = first + refine_steps
        latents = denoise_latents(
            self.pipe, small, inputs, on_step=lambda step, _: on_step(step, total), should_cancel=should_cancel,
            preview=None if preview is None else _StagePreview(preview, 0, total, plan),
            decode_preview=lambda latents: self._decode_preview(latents, small),
            max_sequence_length=self._defaults.max_sequence_length, total_steps=first,
        )
        if should_cancel():
            raise GenerationCancelled("cancelled before the latent upsampling")
        with torch.inference_mode(), checked_modules(self.upsample, should_cancel):
            latents = self.upsample(latents=latents, adain_factor=self.two_stage.adain_factor,
                                    tone_map_compression_ratio=self.two_stage.tone_map_compression_ratio,
                                    output_type="latent").frames
            latents = self._to_native_grid(latents, plan)
        return denoise(
            self.pipe, replace(plan, num_inference_steps=schedule),
            inputs | {"latents": latents, "denoise_strength": strength},
            on_step=lambda step, _: on_step(first + step, total), should_cancel=should_cancel,
            preview=None if preview is None else _StagePreview(preview, first, total, plan),
            decode_preview=lambda latents: self._decode_preview(latents, plan),
            max_sequence_length=self._defaults.max_sequence_length, total_steps=refine_steps,
        )

    def _to_native_grid(self, latents: torch.Tensor, plan: Plan) -> torch.Tensor:
        """Upsampled ``(B, C, F, h, w)`` latents on ``plan``'s latent grid: unchanged when twice the first stage's
        size is the native size, else resized in space (one latent cell more a side at most)."""
        ratio = self.pipe.vae_spatial_compression_ratio
        size = (latents.shape[2], plan.native_height // ratio, plan.native_width // ratio)
        if tuple(latents.shape[2:]) == size:
            return latents
        return torch.nn.functional.interpolate(latents, size=size, mode="trilinear", align_corners=False)

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


class _StagePreview:
    """One stage's view of the clip's preview sink: its steps counted among both stages', its frames delivered at
    the native size (the first stage decodes at half size)."""

    def __init__(self, sink: PreviewSink, offset: int, total: int, plan: Plan) -> None:
        self.sink, self.offset, self.total = sink, offset, total
        self.size = (plan.native_width, plan.native_height)

    def due(self, step: int, total: int) -> bool:
        return self.sink.due(self.offset + step, self.total)

    def deliver(self, frames: np.ndarray) -> None:
        if (frames.shape[2], frames.shape[1]) != self.size:
            frames = np.stack([np.asarray(Image.fromarray(frame).resize(self.size, Image.Resampling.BILINEAR))
                               for frame in frames])
        self.sink.deliver(frames)
