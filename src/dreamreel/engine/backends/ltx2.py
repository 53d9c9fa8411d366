"""Backend for LTX-2 checkpoints (video *with sound*) through diffusers' ``LTX2ConditionPipeline``.

The same controls as LTX-Video (``backends/ltx.py``), through the LTX-2 pipeline's ``LTX2VideoCondition``:

* an image or clip at frame 0 (a start image, the tail of an extended clip) replaces the first latent frames'
  tokens and is held clean (the pipeline's "latent index" conditioning);
* anything later (an end image, a loop's closing image, the head of a reverse-extended clip) is appended as
  keyframe tokens with their own positions. diffusers takes that position as a *latent* index and places the
  keyframe at that latent frame's first pixel frame (up to ``frame_multiple - 1`` frames early: an end image at
  ``N - 8`` rather than ``N - 1``); LTX-2's reference code places a keyframe at any pixel frame, so this adapter
  passes the latent index that keeps all of a clip's frames and moves the keyframe's positions to the plan's exact
  pixel frame (:class:`_Pipeline`);
* modify and reframe hold the latents to the source's after every step (``common.LatentHold``), as for Wan;
* **add audio** (``EditGuide.sound_only``): the source's native frames are one clip condition at frame 0 that
  covers every latent frame at strength 1, so the video tokens are clean at every step (timestep 0) and only the
  audio is denoised, attending to the picture.

The pipeline makes a stereo waveform with every clip (its vocoder's ``output_sampling_rate``, 24 kHz for LTX-2),
``num_frames / frame_rate`` seconds long: :attr:`LTX2Backend.last_audio` after each :meth:`LTX2Backend.generate`
(``backends/base.py``). Guidance beyond classifier-free (spatio-temporal and modality-isolation guidance, each one
more transformer pass per step) is off unless a checkpoint's ``dreamreel.json`` turns it on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import LTX2ConditionPipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
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
from dreamreel.media.audio import AudioTrack

PIPELINE_SIZE_MULTIPLE = 32
"""``LTX2ConditionPipeline.check_inputs`` rejects heights/widths not divisible by 32."""

LTX2_DEFAULTS = CheckpointDefaults(short_side=512, fps=24, max_frames=257, num_inference_steps=30,
                                   guidance_scale=3.0, max_sequence_length=1024)
"""Fallbacks when ``dreamreel.json`` is absent: diffusers' LTX-2 examples (512 px short side at 768x512, 24 fps,
30 steps, guidance 3) and the pipeline's 1024 prompt tokens; 257 frames (10.7 s) a pass, as for LTX-Video."""

AUDIO_GUIDANCE_SCALE = 7.0
"""The pipeline's default audio guidance (its authors recommend a higher scale for sound than for video)."""

STG_BLOCKS = (29,)
"""Transformer blocks spatio-temporal guidance perturbs when a checkpoint turns it on (diffusers' recommendation
for LTX-2.0)."""


class _Pipeline(LTX2ConditionPipeline):
    """``LTX2ConditionPipeline`` keeping two things the stock one does not: the waveform of its latest call
    (``common.denoise`` returns the frames only) and the exact pixel frame of each appended keyframe.

    ``keyframe_pixels`` maps the pixel frame diffusers derives from a keyframe's latent index
    (``(index - 1) * frame_multiple + 1``) to the pixel frame the plan wants it at."""

    keyframe_pixels: Mapping[int, int] = {}
    last_audio: torch.Tensor | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.last_audio = None
        out = super().__call__(*args, **kwargs)
        self.last_audio = out.audio
        return out

    def _prepare_keyframe_coords(self, keyframe_latent_num_frames: int, keyframe_latent_height: int,
                                 keyframe_latent_width: int, pixel_frame_idx: int, num_pixel_frames: int,
                                 fps: float, device: torch.device) -> torch.Tensor:
        return super()._prepare_keyframe_coords(
            keyframe_latent_num_frames, keyframe_latent_height, keyframe_latent_width,
            self.keyframe_pixels.get(pixel_frame_idx, pixel_frame_idx), num_pixel_frames, fps, device)


def latent_index(frame: int, frame_multiple: int) -> int:
    """The latent index to give diffusers for a condition at pixel ``frame``: 0 at frame 0, else the latent frame
    whose first pixel frame (``(index - 1) * frame_multiple + 1``) is the last at or before ``frame``, so a clip
    placed there keeps all its frames (the pipeline trims what would run past the clip's end)."""
    return 0 if frame == 0 else (frame - 1) // frame_multiple + 1


class LTX2Backend:
    """A loaded ``LTX2ConditionPipeline``: a :class:`Plan` -> native-size uint8 frames, and their sound."""

    name = "ltx2"

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: DType = "float32",
                 settings: Mapping[str, Any] | None = None, memory_budget_gb: float | None = None) -> None:
        """Load the pipeline from a local diffusers directory (never downloads). ``settings`` stands in for the
        directory's parsed ``dreamreel.json`` (``None``: read it), whose LTX-2 keys beyond the common ones are
        ``audio_guidance_scale``, ``stg_scale``, ``stg_blocks``, ``modality_scale``, ``guidance_rescale`` and
        ``use_cross_timestep`` (LTX-2.0 takes ``false``; LTX-2.3 and later ``true``). ``memory_budget_gb`` as for
        ``LTXConditionBackend``."""
        self.dtype = torch_dtype(dtype)
        self.model_dir = Path(model_dir)
        self.device = torch.device(device)
        settings = read_settings(self.model_dir) if settings is None else settings
        self._defaults = LTX2_DEFAULTS.updated(settings)
        self.default_steps: int = self._defaults.num_inference_steps
        self.default_guidance: float = self._defaults.guidance_scale
        self.loop_on_image: str = self._defaults.loop_on_image
        self.camera_moves: str = self._defaults.camera_moves
        self.modify_strengths: tuple[float, ...] = self._defaults.modify_strengths
        self.audio_guidance = float(settings.get("audio_guidance_scale", AUDIO_GUIDANCE_SCALE))
        self._extra_guidance = {
            "stg_scale": float(settings.get("stg_scale", 0.0)),
            "spatio_temporal_guidance_blocks": list(settings.get("stg_blocks", STG_BLOCKS)),
            "modality_scale": float(settings.get("modality_scale", 1.0)),
            "guidance_rescale": float(settings.get("guidance_rescale", 0.0)),
            "use_cross_timestep": bool(settings.get("use_cross_timestep", False)),
        }
        self.last_audio: AudioTrack | None = None

        self.pipe: _Pipeline = load_pipeline(_Pipeline, self.model_dir, dtype)
        self.memory = MemoryPlanner(self.name, self.model_dir, dtype, self.device, memory_budget_gb)
        self.memory.place(self.pipe, PIPELINE_SIZE_MULTIPLE)
        pipe = self.pipe
        spatial = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        temporal = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        self._grid = self._defaults.grid(size_multiple=math.lcm(spatial, PIPELINE_SIZE_MULTIPLE),
                                         frame_multiple=temporal)

    @property
    def sample_rate(self) -> int:
        """The rate of the sound the vocoder makes."""
        return int(self.pipe.vocoder.config.output_sampling_rate)

    def native_grid(self) -> NativeGrid:
        """Native sizes: sides multiples of ``size_multiple`` (32), ``frame_multiple*k+1`` frames (8k+1)."""
        return self._grid

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None, guide: EditGuide | None = None,
    ) -> np.ndarray:
        """Generate ``plan``; uint8 frames shaped (native_frames, native_height, native_width, 3), and its sound in
        :attr:`last_audio`. ``conditions``, ``guide`` and cancellation as in ``LTXConditionBackend.generate``; a
        ``guide`` with ``sound_only`` makes only the sound (module docstring)."""
        check_plan(plan, self._grid)
        self.last_audio = None
        inputs: dict[str, Any] = {"conditions": self._conditions(plan, conditions), "frame_rate": plan.native_fps,
                                  **self._guidance(plan)}
        hook = None
        if guide is not None and guide.sound_only:
            inputs["conditions"] = [self._whole_clip(plan, guide.frames)]
        elif guide is not None:
            hook = self._edit_hold(plan, guide)
        self.memory.prepare(self.pipe, plan)
        with self._schedule_for(plan.num_inference_steps):
            frames = denoise(self.pipe, plan, inputs, on_step=on_step, should_cancel=should_cancel, preview=preview,
                             decode_preview=lambda latents: self._decode_preview(latents, plan),
                             max_sequence_length=self._defaults.max_sequence_length, step_hook=hook)
        waveform = self.pipe.last_audio
        if waveform is None:
            raise RuntimeError("the pipeline returned no audio")
        samples = np.ascontiguousarray(waveform[0].float().cpu().numpy(), dtype=np.float32)
        self.last_audio = AudioTrack(np.clip(samples, -1.0, 1.0), self.sample_rate)
        return frames

    @contextmanager
    def _schedule_for(self, steps: int) -> Iterator[None]:
        """The checkpoint's scheduler, except for a one-step run: its schedule is sigma 1.0 alone, which a terminal
        shift (LTX-2's stretches the last sigma to 0.1) would divide by zero, so that run goes without the shift
        (one step from pure noise to the clip, which is what one step means)."""
        scheduler = self.pipe.scheduler
        if steps > 1 or not scheduler.config.get("shift_terminal"):
            yield
            return
        self.pipe.scheduler = type(scheduler).from_config(scheduler.config, shift_terminal=None)
        try:
            yield
        finally:
            self.pipe.scheduler = scheduler

    def round_trip(self, frames: np.ndarray) -> np.ndarray:
        """The VAE's copy of ``frames``, decoded as the pipeline decodes (no decode noise)."""
        with torch.inference_mode():
            latents = encode_video(self.pipe, frames, self.device)
            return self._decode(latents)

    def _guidance(self, plan: Plan) -> dict[str, Any]:
        """Per-call guidance: the sound's follows the picture's switch (``guidance_scale`` 1.0 turns classifier-free
        guidance off for both, as for a prompt-less edit); the rest is the checkpoint's."""
        audio = self.audio_guidance if plan.guidance_scale > 1.0 else 1.0
        extra = self._extra_guidance
        return {"audio_guidance_scale": audio, "audio_stg_scale": extra["stg_scale"],
                "audio_modality_scale": extra["modality_scale"], "audio_guidance_rescale": extra["guidance_rescale"],
                **extra}

    def _conditions(self, plan: Plan, pixels: Sequence[np.ndarray]) -> list[LTX2VideoCondition] | None:
        """The plan's conditions as ``LTX2VideoCondition`` at their latent index, with each appended keyframe's
        exact pixel frame recorded for :class:`_Pipeline`."""
        check_condition_pixels(plan, pixels)
        fm = self._grid.frame_multiple
        placed: dict[int, int] = {}
        result = []
        for condition, frames in zip(plan.conditions, pixels, strict=True):
            index = latent_index(condition.frame_index, fm)
            if index:
                placed[(index - 1) * fm + 1] = condition.frame_index
            given: Any = Image.fromarray(frames[0]) if condition.kind == "image" else frames
            result.append(LTX2VideoCondition(frames=given, index=index, strength=1.0))
        self.pipe.keyframe_pixels = placed
        return result or None

    def _whole_clip(self, plan: Plan, frames: np.ndarray) -> LTX2VideoCondition:
        """The source's native frames as one condition over every latent frame, held clean (add audio)."""
        expected = (plan.native_frames, plan.native_height, plan.native_width, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise ValueError(f"the picture is {frames.dtype}{frames.shape}, expected uint8{expected}")
        return LTX2VideoCondition(frames=frames, index=0, strength=1.0)

    def _edit_hold(self, plan: Plan, guide: EditGuide) -> LatentHold:
        """Modify (the first steps' latents replaced by the source's, noised to each step's level) or reframe (the
        window's latents held at every step), in the pipeline's packed token layout."""
        pipe = self.pipe
        vae = pipe.vae
        with torch.inference_mode():
            x0 = encode_video(pipe, guide.frames, self.device)
            x0 = pipe._normalize_latents(x0, vae.latents_mean, vae.latents_std, vae.config.scaling_factor).float()
        patch, patch_t = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        packed_x0 = pipe._pack_latents(x0, patch, patch_t)
        noise = pipe._pack_latents(edit_noise(x0, plan.seed), patch, patch_t)
        if guide.mask is None:
            steps = plan.num_inference_steps
            return LatentHold(packed_x0, noise, hold_steps=steps - steps_run(steps, guide.strength))
        mask = latent_mask(guide.mask, x0.shape, free_first_frame=guide.free_first_frame).to(x0.device)
        return LatentHold(packed_x0, noise, pipe._pack_latents(mask, patch, patch_t).mean(dim=-1, keepdim=True))

    def _decode_preview(self, packed: torch.Tensor, plan: Plan) -> np.ndarray:
        """The current (still noisy) latents decoded as the end of ``LTX2ConditionPipeline.__call__`` decodes:
        appended keyframe tokens dropped (they follow the clip's own), unpacked, denormalised."""
        pipe = self.pipe
        frames = (plan.native_frames - 1) // pipe.vae_temporal_compression_ratio + 1
        height = plan.native_height // pipe.vae_spatial_compression_ratio
        width = plan.native_width // pipe.vae_spatial_compression_ratio
        latents = pipe._unpack_latents(packed[:, : frames * height * width], frames, height, width,
                                       pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
        vae = pipe.vae
        latents = pipe._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        return self._decode(latents)

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        """Denormalised latents -> uint8 frames, at decode timestep 0 where the VAE is timestep-conditioned."""
        vae = self.pipe.vae
        timestep = None
        if vae.config.timestep_conditioning:
            timestep = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)
        video = vae.decode(latents.to(vae.dtype), timestep, return_dict=False)[0]
        return to_uint8(np.asarray(self.pipe.video_processor.postprocess_video(video, output_type="np")[0]))
