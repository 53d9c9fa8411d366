"""Backends for Wan 2.x checkpoints, one per family, through diffusers' Wan pipelines.

========== ============================ ===============================================================
family     pipeline                     the planner's conditions become
========== ============================ ===============================================================
wan-t2v    ``WanPipeline``              nothing: text only (a loop is a cross-fade, done after decoding)
wan-i2v    ``WanImageToVideoPipeline``  ``image=`` the start image (native frame 0)
wan-flf2v  ``WanImageToVideoPipeline``  ``image=`` frame 0 and ``last_image=`` frame N-1
wan-vace   ``WanVACEPipeline``          ``video`` + ``mask``, one frame each per native frame
wan22-ti2v ``WanPipeline`` /            nothing (text), or ``image=`` the start image on the image
           ``WanImageToVideoPipeline``  pipeline built on the same modules (``expand_timesteps``)
wan22-t2v  ``WanPipeline``              as ``wan-t2v``, two experts (``guidance_scale_2`` too)
wan22-i2v  ``WanImageToVideoPipeline``  ``image=`` frame 0 and, where planned, ``last_image=`` frame N-1;
                                        two experts
========== ============================ ===============================================================

**Native grids** (published settings: ``Wan-Video/Wan2.1`` and ``Wan-Video/Wan2.2`` ``wan/configs``, facts in
``engine/real_configs``). Sizes per aspect keep the family's short side with both sides multiples of the size
multiple (``engine/plan.native_size``); frames are ``4k+1``; one pass makes at most the max frames, and a longer
clip (9 s) is that pass resampled in time (its motion slowed), or a chain of extensions on the families that
extend (``wan-vace``):

========== ========================= ======== ============ === =========== ========================
family     checkpoint                multiple 16:9 native  fps max frames  9 s
========== ========================= ======== ============ === =========== ========================
wan-t2v    Wan 2.1 T2V-1.3B, T2V-14B 16       848x480 [3]  16  81 (5.1 s)  one pass, resampled
wan-i2v    Wan 2.1 I2V-14B 480P/720P 16       848x480 [2]  16  81 (5.1 s)  one pass, resampled
wan-flf2v  Wan 2.1 FLF2V-14B-720P    16       1280x720     16  81 (5.1 s)  one pass, resampled
wan-vace   Wan 2.1 VACE-1.3B, 14B    16       848x480 [3]  16  81 (5.1 s)  extensions, or resampled
wan22-ti2v Wan 2.2 TI2V-5B           32       1248x704 [1] 24  121 (5.0 s) one pass, resampled
wan22-t2v  Wan 2.2 T2V-A14B          16       1280x720 [2] 16  81 (5.1 s)  one pass, resampled
wan22-i2v  Wan 2.2 I2V-A14B          16       1280x720 [2] 16  81 (5.1 s)  one pass, resampled
========== ========================= ======== ============ === =========== ========================

9:16 swaps the sides. [1] TI2V-5B is published at 1280x704 / 704x1280 (Wan's ``SUPPORTED_SIZES``): a short side
of 704 at 16:9 in multiples of 32 is 1248x704 here; ``short_side = 720`` in the models config plans the
published 1280x704 (720 rounds to 704). [2] The other short side the checkpoint is published at is a
``short_side`` (models config or ``dreamreel.json``) away: 720 for I2V-14B-720P (1280x720), 480 for the A14B
families (848x480). [3] Published at 832x480 (30 x 52 latent-patch cells): 480 x 16/9 rounds to 848 in multiples
of 16 here. A 9 s clip from one pass of 81 frames at 16 fps plays its motion at 56 % speed. The Wan 2.2 families
extend nothing: their pipelines condition on single images at the clip's ends, not on clips.

**Controls** (``core.capabilities``): ``wan22-ti2v`` a start image, loops (on a start image: a fade into it,
since it cannot pin a last frame: ``expand_timesteps`` ignores ``last_image``), modify and reframe;
``wan22-t2v`` loops (a cross-fade), modify and reframe; ``wan22-i2v`` a start image (needed), an end image,
loops closed on the start image, modify and reframe. Every edit is the same latent hold as the Wan 2.1
families' (:meth:`WanBackend.edit_hold`): it replaces the latents between steps, which works the same with
two experts (the switch follows the timestep, not the latents) and with 48-channel latents.

:class:`WanBackend` holds what the families share: loading, the native grid, checking plans, the denoising
call (progress, cancellation, previews) and decoding latents for previews (all denoise plain
``z_dim``-channel latents and decode them the same way). Each family adds only how the planner's
conditions map onto its pipeline's arguments (``pipeline_inputs``) and which checkpoints fit it
(``check_checkpoint``).

**VACE** conditions a clip with a ``video`` and a ``mask`` instead of keyframe objects: a black mask frame
keeps that frame's pixels, a white one lets the model generate it. So every control the planner lays out
(start/end image, extend, reverse-extend, interpolate, loop on an image) is the same operation: copy the
condition's pixels into the video at its frame indices and black out the mask there (:func:`vace_inputs`).

**Image-to-video** (``WanImageToVideoPipeline``, diffusers 0.42) VAE-encodes ``[image, zeros..., last_image]``
(or ``[image, zeros...]``) as one clip, marks just those frames known in a 4-channel mask, and feeds mask
and latents to the transformer beside the noise (so its ``in_channels`` are ``2 * z_dim + 4``). It always
needs ``image``: ``check_inputs`` refuses a call without one, and the mask always marks frame 0 known.
Hence an *end image alone* has no honest mapping (a gray or black first frame would be kept as the clip's
first frame; generating from the end image and reversing the clip would play the prompt's motion
backwards), and ``core.capabilities`` refuses it for both image families at submission. What the
checkpoint's transformer adds:

* ``image_dim`` set (Wan 2.1): CLIP vision features of the image(s) also enter every block's
  cross-attention, so the directory needs ``image_encoder`` (``CLIPVisionModel``) and ``image_processor``
  (``CLIPImageProcessor``). Wan 2.1 I2V embeds one image; Wan 2.1 FLF2V (``pos_embed_seq_len`` = 2 x 257)
  embeds exactly two, first and last, and fails on one: it cannot start from an image alone, which is why
  ``wan-flf2v`` needs an end image or a loop. Wan 2.1 I2V fails on two (the embeddings' batch no longer
  matches), so ``wan-i2v`` never passes ``last_image``.
* ``image_dim`` unset (Wan 2.2 I2V A14B): no image encoder; the latents alone carry the frames, first
  or first and last, so such a checkpoint serves either family (its ``dreamreel.json`` picks one).
* ``expand_timesteps`` (Wan 2.2 TI2V-5B) is refused by these two families: that mode ignores ``last_image`` and
  replaces the first latent frame after denoising; ``wan22-ti2v`` serves it, its previews showing that frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import DiffusionPipeline, WanImageToVideoPipeline, WanPipeline, WanVACEPipeline
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

WAN_DEFAULTS = CheckpointDefaults(short_side=480, fps=16, max_frames=81, num_inference_steps=50,
                                  guidance_scale=5.0, max_sequence_length=512)
"""Fallbacks when ``dreamreel.json`` is absent: Wan 2.1's published 480p defaults (832x480, 81 frames at
16 fps, 50 steps, guidance 5; 512 prompt tokens, the pipelines' default). A 720p checkpoint sets
``short_side`` in its ``dreamreel.json``; a family published at 720p only overrides ``family_defaults``."""

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
    check_condition_pixels(plan, pixels)
    shape = (plan.native_frames, plan.native_height, plan.native_width, 3)
    video = np.full(shape, GRAY, dtype=np.uint8)
    mask = np.full(shape[:3], GENERATE, dtype=np.uint8)
    for condition, frames in zip(plan.conditions, pixels, strict=True):
        start, stop = condition.frame_index, condition.frame_index + condition.num_frames
        if start < 0 or stop > plan.native_frames:
            raise ValueError(f"condition {condition} does not fit in {plan.native_frames} native frames")
        video[start:stop] = frames
        mask[start:stop] = KEEP
    return [Image.fromarray(frame) for frame in video], [Image.fromarray(frame) for frame in mask]


def first_last_images(plan: Plan, pixels: Sequence[np.ndarray]) -> tuple[Image.Image, Image.Image | None]:
    """``(image, last_image)`` for ``WanImageToVideoPipeline``: the image at native frame 0 and the one at
    the last native frame (``None`` when there is none).

    Those are the only conditions the pipeline can take: single images, at the clip's two ends. The
    planner puts a start image at 0, an end image at ``N - 1``, and a loop's start image at both.
    """
    check_condition_pixels(plan, pixels)
    last = plan.native_frames - 1
    images: dict[int, Image.Image] = {}
    for condition, frames in zip(plan.conditions, pixels, strict=True):
        if condition.kind != "image" or condition.frame_index not in (0, last):
            raise ValueError(f"condition {condition}: Wan image-to-video takes only images at native frame 0 "
                             f"or {last}")
        images[condition.frame_index] = Image.fromarray(frames[0])
    if 0 not in images:
        raise ValueError("Wan image-to-video needs an image at native frame 0 (a start image)")
    return images[0], images.get(last) if last > 0 else None


class WanBackend:
    """A loaded Wan pipeline that turns a :class:`Plan` into native-size uint8 frames (one subclass a family)."""

    name: ClassVar[str]
    pipeline_class: ClassVar[type[DiffusionPipeline]]
    family_defaults: ClassVar[CheckpointDefaults] = WAN_DEFAULTS
    """What a checkpoint of this family without ``dreamreel.json`` generates natively."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: DType = "float32",
                 memory_budget_gb: float | None = None, settings: Mapping[str, Any] | None = None) -> None:
        """Load the pipeline from a local diffusers directory (never downloads) and check it fits the family.
        ``settings`` stands in for the directory's parsed ``dreamreel.json`` (``None``: read it).

        ``dtype`` is float32 or bfloat16 (see :data:`dreamreel.engine.backends.common.DTYPES`).
        ``memory_budget_gb``: GPU memory the model may use; each request then runs under the cheapest memory
        plan that fits it (:class:`~dreamreel.engine.backends.common.MemoryPlanner`). None: all resident.
        """
        self.dtype = torch_dtype(dtype)
        self.model_dir = Path(model_dir)
        self.device = torch.device(device)
        self._defaults = self.family_defaults.updated(read_settings(self.model_dir) if settings is None else settings)
        self.default_steps: int = self._defaults.num_inference_steps
        self.default_guidance: float = self._defaults.guidance_scale
        self.loop_on_image: str = self._defaults.loop_on_image
        self.camera_moves: str = self._defaults.camera_moves
        self.modify_strengths: tuple[float, ...] = self._defaults.modify_strengths

        self.pipe = load_pipeline(self.pipeline_class, self.model_dir, dtype)
        if self.pipe.transformer is None:
            raise ValueError(f"{self.model_dir} has no transformer (a transformer_2-only export is not supported)")
        self.check_checkpoint()
        expected = self.transformer_in_channels(self.pipe.vae.config.z_dim)
        if self.pipe.transformer.config.in_channels != expected:
            raise ValueError(f"{self.model_dir}: transformer in_channels {self.pipe.transformer.config.in_channels} "
                             f"is not {self.name}'s {expected}; is `family` in dreamreel.json right?")
        self.memory = MemoryPlanner(self.name, self.model_dir, dtype, self.device, memory_budget_gb)
        self.memory.place(self.pipe, self.pipe.vae_scale_factor_spatial * 2)
        self._grid = self._compute_grid()

    def check_checkpoint(self) -> None:
        """Raise ``ValueError`` for a loaded checkpoint whose pipeline this family would call wrongly."""

    def transformer_in_channels(self, z_dim: int) -> int:
        """Channels the family's transformer reads per latent pixel: the noisy latents alone."""
        return z_dim

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        """The pipeline's conditioning arguments for ``plan`` (``pixels``: one array per condition)."""
        raise NotImplementedError

    def _compute_grid(self) -> NativeGrid:
        pipe = self.pipe
        patch_t, patch_h, patch_w = pipe.transformer.config.patch_size
        return self._defaults.grid(
            # Wan: VAE 8 x patch 2 = 16 px (``check_inputs`` enforces exactly this multiple).
            size_multiple=pipe.vae_scale_factor_spatial * math.lcm(patch_h, patch_w),
            # Wan: causal VAE ratio 4; exact for patch_t == 1, which every Wan checkpoint uses.
            frame_multiple=pipe.vae_scale_factor_temporal * patch_t,
        )

    def pipeline_for(self, plan: Plan) -> DiffusionPipeline:
        """The pipeline that runs ``plan``: the loaded one (Wan 2.2 TI2V picks by the plan's conditions)."""
        return self.pipe

    def native_grid(self) -> NativeGrid:
        """Native sizes: sides multiples of ``size_multiple``, ``frame_multiple*k+1`` frames."""
        return self._grid

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None, guide: EditGuide | None = None,
    ) -> np.ndarray:
        """Generate ``plan``; uint8 frames shaped (native_frames, native_height, native_width, 3).

        ``conditions`` holds the pixels of ``plan.conditions`` in order, each ``(num_frames, h, w, 3)``
        uint8 at native size; :meth:`pipeline_inputs` turns them into the family's arguments.

        Raises :class:`~dreamreel.engine.backends.base.GenerationCancelled` as soon as ``should_cancel()``
        is true after a step, so neither the remaining steps nor the VAE decode run. ``preview``, when
        given, receives the current latents decoded as the final clip would be.

        A video edit (``guide``) is held by :meth:`edit_hold`: the Wan pipelines cannot start part-way through
        their schedule, so a modify runs the whole schedule with the latents replaced by the source's,
        noised to each step's level, until its strength's share is left.
        """
        check_plan(plan, self._grid)
        inputs = self.pipeline_inputs(plan, conditions)
        hold = self.edit_hold(plan, guide, inputs) if guide is not None else None
        self.memory.prepare(self.pipe, plan)
        return denoise(self.pipeline_for(plan), plan, inputs, on_step=on_step, should_cancel=should_cancel,
                       preview=preview,
                       decode_preview=self._decode_preview,
                       max_sequence_length=self._defaults.max_sequence_length, step_hook=hold)

    def round_trip(self, frames: np.ndarray) -> np.ndarray:
        """The VAE's copy of ``frames``."""
        vae = self.pipe.vae
        with torch.inference_mode():
            latents = encode_video(self.pipe, frames, self.device)
            video = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
        return to_uint8(np.asarray(self.pipe.video_processor.postprocess_video(video, output_type="np")[0]))

    def edit_hold(self, plan: Plan, guide: EditGuide, inputs: dict[str, Any]) -> LatentHold | None:
        """The step hook that holds the (unpacked, normalised) latents to ``guide``'s."""
        vae = self.pipe.vae
        with torch.inference_mode():
            latents = encode_video(self.pipe, guide.frames, self.device).float()
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device)
        std = torch.tensor(vae.config.latents_std).view(shape).to(latents.device)
        x0 = (latents - mean) / std
        noise = edit_noise(x0, plan.seed)
        if guide.mask is None:
            return LatentHold(x0, noise, hold_steps=plan.num_inference_steps - steps_run(plan.num_inference_steps,
                                                                                          guide.strength))
        mask = latent_mask(guide.mask, x0.shape, free_first_frame=guide.free_first_frame).to(x0.device)
        return LatentHold(x0, noise, mask)

    def _decode_preview(self, latents: torch.Tensor) -> np.ndarray:
        """Decode the current (still noisy) latents as the end of every Wan pipeline's ``__call__`` does.

        The latents are the clip's own (VACE: no reference images are passed, so none are prepended;
        image-to-video: the condition travels beside them, not in them); they are denormalised with the
        VAE's per-channel mean/std and decoded.
        """
        vae = self.pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, vae.dtype)
        std = torch.tensor(vae.config.latents_std).view(shape).to(latents.device, vae.dtype)
        video = vae.decode(latents.to(vae.dtype) * std + mean, return_dict=False)[0]
        return to_uint8(np.asarray(self.pipe.video_processor.postprocess_video(video, output_type="np")[0]))


class WanT2VBackend(WanBackend):
    """Wan text-to-video (``WanPipeline``): no conditions; a loop is the planner's cross-fade."""

    name = "wan-t2v"
    pipeline_class = WanPipeline

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        check_condition_pixels(plan, pixels)
        if plan.conditions:
            raise ValueError(f"{self.name} generates from text alone; the plan has conditions {plan.conditions}")
        return {}


class WanI2VBackend(WanBackend):
    """Wan image-to-video (``WanImageToVideoPipeline``): ``image=`` the start image, nothing else."""

    name = "wan-i2v"
    pipeline_class = WanImageToVideoPipeline
    takes_last_image: ClassVar[bool] = False
    """Whether ``last_image=`` is passed: the family's checkpoints are conditioned on a last frame too."""

    def check_checkpoint(self) -> None:
        """Refuse TI2V-5B (``expand_timesteps``), a CLIP-conditioned transformer without its image encoder,
        and a Wan 2.1 checkpoint of the other image family (one image embedded vs a first-last pair)."""
        pipe, config = self.pipe, self.pipe.transformer.config
        if self.takes_last_image and self.loop_on_image != "keyframe":
            raise ValueError(f"{self.model_dir}: {self.name} always conditions on a last image, so a loop on a start "
                             f"image closes on it; loop_on_image {self.loop_on_image!r} cannot apply")
        if pipe.config.expand_timesteps:
            raise ValueError(f"{self.model_dir}: expand_timesteps checkpoints (Wan 2.2 TI2V-5B) are not supported")
        if config.image_dim is None:
            return  # Wan 2.2: the frames reach the model through the latents alone
        if pipe.image_encoder is None or pipe.image_processor is None:
            raise ValueError(f"{self.model_dir}: the transformer reads CLIP image features (image_dim "
                             f"{config.image_dim}) but the directory has no image_encoder and image_processor")
        pair = config.pos_embed_seq_len is not None
        if pair != self.takes_last_image:
            family, takes = ("wan-flf2v", "a first and a last frame") if pair else ("wan-i2v", "one image")
            raise ValueError(f"{self.model_dir}: its transformer embeds {takes} (pos_embed_seq_len "
                             f"{config.pos_embed_seq_len}): a {family} checkpoint, not {self.name}")

    def transformer_in_channels(self, z_dim: int) -> int:
        """Noisy latents, the 4-channel known-frames mask (one per frame of a latent frame), condition latents."""
        return 2 * z_dim + self.pipe.vae_scale_factor_temporal

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        image, last_image = first_last_images(plan, pixels)
        if (last_image is not None) != self.takes_last_image:
            wanted = "needs a last frame" if self.takes_last_image else "takes no last frame"
            raise ValueError(f"{self.name} {wanted}; the plan has conditions {plan.conditions}")
        return {"image": image, "last_image": last_image}


class WanFLF2VBackend(WanI2VBackend):
    """Wan first-last-frame-to-video (Wan 2.1 FLF2V): ``image=`` frame 0, ``last_image=`` frame N-1.

    The planner's end image, or a loop's start image repeated at the end, is the last frame.
    """

    name = "wan-flf2v"
    takes_last_image = True
    family_defaults = replace(WAN_DEFAULTS, short_side=720)
    """Wan 2.1 FLF2V is published at 720p only (1280x720, 81 frames at 16 fps); 480p would be off its training."""


class WanVACEBackend(WanBackend):
    """Wan VACE (``WanVACEPipeline``): every control as ``video`` + ``mask`` (:func:`vace_inputs`)."""

    name = "wan-vace"
    pipeline_class = WanVACEPipeline

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        """Without conditions the video is all gray and the mask all white: plain text-to-video."""
        video, mask = vace_inputs(plan, pixels)
        return {"video": video, "mask": mask}

    def edit_hold(self, plan: Plan, guide: EditGuide, inputs: dict[str, Any]) -> LatentHold | None:
        """A reframe is VACE's own outpainting: the canvas as ``video`` with the window's pixels kept (black
        mask) and the outside generated (white); frame 0 stays as the conditions laid it (``first_frame``).
        A modify is held like any Wan family's."""
        if guide.mask is None:
            return super().edit_hold(plan, guide, inputs)
        keep = guide.mask >= 0.5
        first = 1 if guide.free_first_frame else 0
        for index in range(first, plan.native_frames):
            frame = np.asarray(inputs["video"][index]).copy()
            frame[keep] = guide.frames[index][keep]
            cover = np.asarray(inputs["mask"][index]).copy()
            cover[keep] = KEEP
            inputs["video"][index], inputs["mask"][index] = Image.fromarray(frame), Image.fromarray(cover)
        return None


WAN22_A14B_DEFAULTS = CheckpointDefaults(short_side=720, fps=16, max_frames=81, num_inference_steps=40,
                                         guidance_scale=4.0, max_sequence_length=512)
"""Wan 2.2 A14B's published settings (``Wan-Video/Wan2.2`` ``wan/configs``): 81 frames at 16 fps, 40 steps, 720p
(1280x720; 832x480 also supported: a checkpoint's ``dreamreel.json`` may set ``short_side`` 480). Text-to-video
guides at 4.0 (high noise) and 3.0 (low noise); image-to-video at 3.5 for both."""


class TwoExperts:
    """What the Wan 2.2 A14B families share: two transformers, ``transformer`` for the high-noise steps (timestep
    >= ``boundary_ratio`` x 1000) and ``transformer_2`` for the rest, each with its own guidance scale."""

    low_noise_guidance_ratio: ClassVar[float] = 1.0
    """``guidance_scale_2 / guidance_scale`` as published, kept when a request or config sets the guidance."""
    pipe: Any
    model_dir: Path

    def check_experts(self) -> None:
        pipe = self.pipe
        if pipe.transformer_2 is None or pipe.config.boundary_ratio is None:
            raise ValueError(f"{self.model_dir}: a Wan 2.2 A14B checkpoint has two experts (transformer and "
                             "transformer_2) switched at boundary_ratio; this one has not")
        if pipe.transformer_2.config.in_channels != pipe.transformer.config.in_channels:
            raise ValueError(f"{self.model_dir}: transformer_2 reads {pipe.transformer_2.config.in_channels} "
                             f"channels, transformer {pipe.transformer.config.in_channels}")
        if pipe.config.expand_timesteps:
            raise ValueError(f"{self.model_dir}: expand_timesteps is Wan 2.2 TI2V-5B's (family wan22-ti2v)")

    def expert_guidance(self, plan: Plan) -> dict[str, Any]:
        """``guidance_scale_2`` for the low-noise expert; never below 1 (which turns guidance off)."""
        return {"guidance_scale_2": max(1.0, plan.guidance_scale * self.low_noise_guidance_ratio)}


class WanA14BT2VBackend(TwoExperts, WanT2VBackend):
    """Wan 2.2 T2V-A14B (``WanPipeline`` with ``transformer_2``): text only, like ``wan-t2v``."""

    name = "wan22-t2v"
    family_defaults = WAN22_A14B_DEFAULTS
    low_noise_guidance_ratio = 3.0 / 4.0

    def check_checkpoint(self) -> None:
        self.check_experts()

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        return {**super().pipeline_inputs(plan, pixels), **self.expert_guidance(plan)}


class WanA14BI2VBackend(TwoExperts, WanI2VBackend):
    """Wan 2.2 I2V-A14B (``WanImageToVideoPipeline`` with ``transformer_2``): ``image=`` the start image and,
    where the plan has one, ``last_image=`` its last frame (an end image, or a loop's start image again).

    No CLIP image encoder: the frames reach the model through the condition latents alone, first or first and
    last (the pipeline marks each known in its mask), so one checkpoint takes either."""

    name = "wan22-i2v"
    family_defaults = replace(WAN22_A14B_DEFAULTS, guidance_scale=3.5)

    def check_checkpoint(self) -> None:
        self.check_experts()
        if self.pipe.transformer.config.image_dim is not None:
            raise ValueError(f"{self.model_dir}: its transformer reads CLIP image features: a Wan 2.1 image "
                             "checkpoint (family wan-i2v or wan-flf2v), not Wan 2.2 I2V-A14B")

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        image, last_image = first_last_images(plan, pixels)
        return {"image": image, "last_image": last_image, **self.expert_guidance(plan)}


class WanTI2VBackend(WanBackend):
    """Wan 2.2 TI2V-5B: one transformer for text-to-video (``WanPipeline``) and image-to-video
    (``WanImageToVideoPipeline`` on the same modules), both with ``expand_timesteps``.

    Its VAE (``z_dim`` 48) folds 2x2 pixels into channels before three downsamples: 16x spatial compression
    (x transformer patch 2 = sides in multiples of 32), 4x temporal. ``expand_timesteps`` gives every latent
    token its own timestep; image-to-video sets the first latent frame's to 0 and replaces that frame by the
    image's latents at the transformer's input and after the last step, so a start image is exact. The same
    mode ignores ``last_image`` (it encodes the image alone), so an end image is refused
    (``core.capabilities``) rather than silently dropped, and a loop on a start image fades into it.
    """

    name = "wan22-ti2v"
    pipeline_class = WanPipeline
    family_defaults = CheckpointDefaults(short_side=704, fps=24, max_frames=121, num_inference_steps=50,
                                         guidance_scale=5.0, max_sequence_length=512)
    """Published (``Wan-Video/Wan2.2`` ``wan/configs/wan_ti2v_5B.py``): 121 frames at 24 fps, 50 steps, guidance 5;
    1280x704 or 704x1280."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pipe = self.pipe
        self.image_pipe = WanImageToVideoPipeline(
            tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=pipe.vae, scheduler=pipe.scheduler,
            transformer=pipe.transformer, expand_timesteps=True,
        )
        self.image_pipe.set_progress_bar_config(disable=True)
        self._preview_first: torch.Tensor | None = None

    def check_checkpoint(self) -> None:
        config = self.pipe.config
        if not config.expand_timesteps or self.pipe.transformer_2 is not None:
            raise ValueError(f"{self.model_dir}: not a Wan 2.2 TI2V-5B checkpoint (expand_timesteps "
                             f"{config.expand_timesteps}, transformer_2 {self.pipe.transformer_2 is not None})")

    def pipeline_for(self, plan: Plan) -> DiffusionPipeline:
        return self.image_pipe if plan.conditions else self.pipe

    def pipeline_inputs(self, plan: Plan, pixels: Sequence[np.ndarray]) -> dict[str, Any]:
        if not plan.conditions:
            return {}
        image, last_image = first_last_images(plan, pixels)
        if last_image is not None:
            raise ValueError(f"{self.name} takes a start image only (expand_timesteps ignores last_image); "
                             f"the plan has conditions {plan.conditions}")
        return {"image": image}

    def generate(
        self, plan: Plan, on_step: StepCallback, should_cancel: CancelCheck, conditions: Sequence[np.ndarray] = (),
        preview: PreviewSink | None = None, guide: EditGuide | None = None,
    ) -> np.ndarray:
        """As every Wan family generates; previews of an image-to-video clip show the start image as latent
        frame 0, as the pipeline's own output will."""
        self._preview_first = None
        if preview is not None and plan.conditions:
            vae = self.pipe.vae
            with torch.inference_mode():
                first = encode_video(self.pipe, conditions[0][:1], self.device).float()
            shape = (1, vae.config.z_dim, 1, 1, 1)
            mean = torch.tensor(vae.config.latents_mean).view(shape).to(first.device)
            std = torch.tensor(vae.config.latents_std).view(shape).to(first.device)
            self._preview_first = (first - mean) / std
        return super().generate(plan, on_step, should_cancel, conditions, preview=preview, guide=guide)

    def _decode_preview(self, latents: torch.Tensor) -> np.ndarray:
        if self._preview_first is not None:
            latents = latents.clone()
            latents[:, :, :1] = self._preview_first.to(latents.device, latents.dtype)
        return super()._decode_preview(latents)
