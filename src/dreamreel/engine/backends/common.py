"""Pieces every diffusers backend shares: dtypes, checkpoint defaults, loading, plan and pixel checks, and
the denoising call itself (progress, cancellation, previews, frames -> uint8).

A family's adapter keeps only what is its own: the pipeline class, how the planner's conditions become
that pipeline's inputs, and how its latents decode into a preview.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from diffusers import DiffusionPipeline

from dreamreel.engine.backends.base import CancelCheck, GenerationCancelled, PreviewSink, StepCallback
from dreamreel.engine.memory import FAMILIES, GIB, PLANS, TILED_PLANS, MemoryEstimate, estimate_peak_bytes, gib
from dreamreel.engine.plan import NativeGrid, Plan

log = logging.getLogger("dreamreel.engine.memory")

DType = Literal["float32", "bfloat16"]
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""float16 is not offered: the T5-family text encoders (LTX-Video's T5 v1.1, Wan's UMT5) are known to
overflow in it, and CPUs without native half-precision kernels run it far slower than bfloat16."""

P = TypeVar("P", bound=DiffusionPipeline)


def torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype for a ``Settings.dtype`` string; a clear error for anything not offered."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def quiet_library_logs() -> None:
    """Loading bars and per-call scheduler notices from diffusers/transformers only clutter worker logs."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline output (float in [0, 1], ``output_type="np"``) as uint8 pixels."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


LOOP_ON_IMAGE = ("keyframe", "fade")
MODIFY_STRENGTHS = (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)
"""Share of the denoising schedule each modify mode runs, ``adhere_1`` .. ``reimagine_3``
(``base.EditGuide``): a family's default until a checkpoint's ``dreamreel.json`` carries its calibrated table
(``modify_strengths``; docs/benchmarks.md has the embedded model's calibration)."""
CAMERA_MOVES = ("prompt", "virtual")


@dataclass(frozen=True)
class CheckpointDefaults:
    """A checkpoint's native defaults: the family's published values, overridden by ``dreamreel.json``."""

    short_side: int
    """Preferred short side of the native clip, in pixels."""
    fps: int
    max_frames: int
    """Most native frames in one pass."""
    num_inference_steps: int
    guidance_scale: float
    max_sequence_length: int
    """Prompt tokens the text encoder reads (small models may read fewer than the pipeline's default)."""
    loop_on_image: str = "keyframe"
    """How a loop on a start image closes, where the family can pin its last frame: ``keyframe`` (the image
    again as the last frame's condition) or ``fade`` (the last frames dissolve into the first; for a model
    whose end keyframes measurably do not land, like the embedded one: ``engine/plan.py``)."""
    camera_moves: str = "prompt"
    """How a camera concept moves the camera: ``prompt`` (its clause in the prompt only; the model follows
    camera words) or ``virtual`` (also a moving window over the generated frames, ``media.camera``, for a
    model that measurably does not follow them, like the embedded one)."""
    modify_strengths: tuple[float, ...] = MODIFY_STRENGTHS
    """The nine modify modes' strengths (:data:`MODIFY_STRENGTHS`), non-decreasing, each in (0, 1]."""

    def __post_init__(self) -> None:
        strengths = self.modify_strengths
        if len(strengths) != len(MODIFY_STRENGTHS) or not all(0 < s <= 1 for s in strengths) or any(
                a > b for a, b in zip(strengths, strengths[1:], strict=False)):
            raise ValueError(f"modify_strengths must be {len(MODIFY_STRENGTHS)} non-decreasing numbers in (0, 1], "
                             f"got {strengths!r}")
        if self.loop_on_image not in LOOP_ON_IMAGE:
            raise ValueError(f"loop_on_image must be one of {', '.join(LOOP_ON_IMAGE)}, got {self.loop_on_image!r}")
        if self.camera_moves not in CAMERA_MOVES:
            raise ValueError(f"camera_moves must be one of {', '.join(CAMERA_MOVES)}, got {self.camera_moves!r}")

    def updated(self, settings: Mapping[str, Any]) -> CheckpointDefaults:
        """These defaults with every field a parsed ``dreamreel.json`` sets (same keys as the fields)."""
        return CheckpointDefaults(
            short_side=int(settings.get("short_side", self.short_side)),
            fps=int(settings.get("fps", self.fps)),
            max_frames=int(settings.get("max_frames", self.max_frames)),
            num_inference_steps=int(settings.get("num_inference_steps", self.num_inference_steps)),
            guidance_scale=float(settings.get("guidance_scale", self.guidance_scale)),
            max_sequence_length=int(settings.get("max_sequence_length", self.max_sequence_length)),
            loop_on_image=str(settings.get("loop_on_image", self.loop_on_image)),
            camera_moves=str(settings.get("camera_moves", self.camera_moves)),
            modify_strengths=tuple(float(v) for v in settings.get("modify_strengths", self.modify_strengths)),
        )

    def grid(self, size_multiple: int, frame_multiple: int) -> NativeGrid:
        """The native grid of a loaded checkpoint whose VAE x patching gives these multiples."""
        return NativeGrid(short_side=self.short_side, size_multiple=size_multiple, frame_multiple=frame_multiple,
                          fps=self.fps, max_frames=self.max_frames)


def load_pipeline(pipeline_class: type[P], model_dir: Path, dtype: str) -> P:
    """``pipeline_class`` from a local diffusers directory (never downloads), without progress bars."""
    quiet_library_logs()
    pipe = pipeline_class.from_pretrained(model_dir, dtype=torch_dtype(dtype), local_files_only=True)
    # Jobs report progress through on_step; a tqdm bar per job would only clutter worker logs.
    pipe.set_progress_bar_config(disable=True)
    return pipe


OFFLOADS = ("resident", "model_offload", "group_offload")
"""Where a pipeline's weights live, least frugal first; a plan's offload is its own name, else ``resident``."""


def apply_memory_plan(pipe: DiffusionPipeline, plan: str, device: torch.device, offload: str = "resident") -> str:
    """Put ``pipe`` in the state ``plan`` (``engine.memory.PLANS``) asks for; the offload now in force.

    VAE tiling follows the plan both ways, on any device (it is only a different decode). Offload only
    applies on CUDA (on a CPU the weights are already in host memory: a no-op), and only ever increases from
    ``offload``, what is in force now: diffusers has no public way to undo group offloading, undoing model
    offload would move every weight back at once, and a worker that once needed offload for a size will
    likely see that size again. ``group_offload`` is leaf level with a prefetch stream (diffusers' fastest
    group offload; it holds about two leaf modules' weights at a time)."""
    if plan not in PLANS:
        raise ValueError(f"memory plan must be one of {', '.join(PLANS)}, got {plan!r}")
    if plan in TILED_PLANS:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()
    wanted = plan if plan in OFFLOADS else "resident"
    if device.type != "cuda" or OFFLOADS.index(wanted) <= OFFLOADS.index(offload):
        return offload
    if wanted == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.remove_all_hooks()  # model offload's accelerate hooks and group offload's cannot both hold a model
        pipe.to("cpu")
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)
    return wanted


class MemoryPlanner:
    """A backend's memory budget: which plan each request runs with (``engine/memory.py``), applied to its
    pipeline before it denoises. Without a budget it changes nothing: the pipeline stays resident, untiled."""

    def __init__(self, family: str, model_dir: Path, dtype: str, device: torch.device,
                 budget_gb: float | None) -> None:
        self.family, self.model_dir, self.dtype, self.device = family, Path(model_dir), dtype, device
        if budget_gb is not None and family not in FAMILIES:  # refused at load, not at the first request
            raise ValueError(f"{model_dir}: a memory budget needs the family's memory facts, and there are none for "
                             f"{family!r} (engine/memory.py FAMILIES)")
        self.budget_bytes = None if budget_gb is None else int(budget_gb * GIB)
        self.offload = "resident"
        """The offload in force (it only ever increases: :func:`apply_memory_plan`)."""

    def estimate(self, width: int, height: int, frames: int) -> MemoryEstimate:
        return estimate_peak_bytes(self.family, self.model_dir, width, height, frames, self.dtype,
                                   budget_bytes=self.budget_bytes)

    def place(self, pipe: DiffusionPipeline, size_multiple: int = 32) -> None:
        """Move a freshly loaded pipeline to its device, or offload it from the start when its weights alone
        (a one-frame clip of ``size_multiple`` pixels a side) do not fit the budget."""
        if self.budget_bytes is None or self.device.type != "cuda":
            pipe.to(self.device)
            return
        smallest = self.estimate(size_multiple, size_multiple, 1)
        if smallest.plan in OFFLOADS[1:]:
            self.offload = apply_memory_plan(pipe, smallest.plan, self.device, self.offload)
        else:
            pipe.to(self.device)

    def prepare(self, pipe: DiffusionPipeline, plan: Plan) -> MemoryEstimate | None:
        """Apply the plan ``plan``'s native size needs; None (nothing changed) without a budget. A size that
        fits under no plan still runs, under the most frugal one (the API refuses it first where it can)."""
        if self.budget_bytes is None:
            return None
        estimate = self.estimate(plan.native_width, plan.native_height, plan.native_frames)
        before = self.offload
        self.offload = apply_memory_plan(pipe, estimate.plan, self.device, self.offload)
        if self.offload != before or not estimate.fits:
            log.info("%s at %dx%d x %d frames: plan %s, about %s GiB of a %s GiB budget%s", self.family,
                     plan.native_width, plan.native_height, plan.native_frames, estimate.plan,
                     gib(estimate.peak_bytes), gib(self.budget_bytes), "" if estimate.fits else " (does not fit)")
        return estimate


def check_plan(plan: Plan, grid: NativeGrid) -> None:
    """Reject sizes the pipeline would silently round (frames) or reject late (sides)."""
    if plan.native_width % grid.size_multiple or plan.native_height % grid.size_multiple:
        size = f"{plan.native_width}x{plan.native_height}"
        raise ValueError(f"native size {size} is not a multiple of {grid.size_multiple}")
    if (plan.native_frames - 1) % grid.frame_multiple or not 1 <= plan.native_frames <= grid.max_frames:
        raise ValueError(f"native_frames {plan.native_frames} is not {grid.frame_multiple}*k+1 <= {grid.max_frames}")
    if plan.num_inference_steps < 1:
        raise ValueError("num_inference_steps must be at least 1")


def check_condition_pixels(plan: Plan, pixels: Sequence[np.ndarray]) -> None:
    """``pixels`` must be one uint8 ``(num_frames, native_height, native_width, 3)`` array per condition."""
    if len(pixels) != len(plan.conditions):
        raise ValueError(f"plan has {len(plan.conditions)} conditions but {len(pixels)} were resolved")
    for condition, frames in zip(plan.conditions, pixels, strict=True):
        expected = (condition.num_frames, plan.native_height, plan.native_width, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise ValueError(f"condition {condition} pixels are {frames.dtype}{frames.shape}, expected {expected}")


@contextmanager
def checked_modules(pipe: DiffusionPipeline, should_cancel: CancelCheck) -> Iterator[None]:
    """While inside, every module of the pipeline's models asks ``should_cancel()`` before it runs and raises
    :class:`GenerationCancelled` when it is true.

    Why: after the last denoising step the pipeline goes on to the VAE decode (most of a small model's job)
    with no callback of ours in between, and a big model's single step can take long too. A forward pre-hook
    on every module is a check between decoder blocks (and transformer blocks), at the cost of one Python call
    per module call: microseconds, next to the milliseconds each module computes."""
    def check(name: str) -> Callable[[torch.nn.Module, Any], None]:
        def hook(module: torch.nn.Module, args: Any) -> None:
            # Not traced into a compiled block (engine/compile.py): it would break the graph at every module; the
            # modules that run eagerly around the compiled blocks still check, every step.
            if not torch.compiler.is_compiling() and should_cancel():
                raise GenerationCancelled(f"cancelled in the {name} ({type(module).__name__})")
        return hook

    handles = [
        module.register_forward_pre_hook(check(name))
        for name, component in pipe.components.items() if isinstance(component, torch.nn.Module)
        for module in component.modules()
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


StepHook = Callable[[DiffusionPipeline, int, torch.Tensor], torch.Tensor]
"""``(pipe, step index, latents after that step) -> latents the next step starts from`` (an edit's hold)."""


def steps_run(steps: int, strength: float) -> int:
    """Denoising steps a :class:`~dreamreel.engine.backends.base.EditGuide` of ``strength`` runs: at least one."""
    return max(1, min(steps, int(steps * strength + 1e-6)))


class LatentHold:
    """The step hook of a video edit: latents held to a source's latents ``x0``, noised to each step's level.

    After step ``i`` the scheduler's ``sigmas[step_index]`` is the noise level of the latents the next step
    reads; the source noised to it is ``(1 - sigma) * x0 + sigma * noise`` (flow matching, as LTX-Video and
    Wan both denoise). With a ``mask`` (reframe) that is blended in where the mask is 1 after every step;
    without one (modify, for a pipeline that cannot start part-way) the whole latents are replaced after
    each of the first ``hold_steps`` steps, which is the part-way start done the long way.
    ``x0``, ``noise`` and ``mask`` are in the pipeline's own latent layout (packed for LTX-Video)."""

    def __init__(self, x0: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor | None = None,
                 hold_steps: int = 0) -> None:
        self.x0, self.noise, self.mask, self.hold_steps = x0, noise, mask, hold_steps

    def __call__(self, pipe: DiffusionPipeline, index: int, latents: torch.Tensor) -> torch.Tensor:
        if self.mask is None and index >= self.hold_steps:
            return latents
        scheduler = pipe.scheduler
        sigma = scheduler.sigmas[scheduler.step_index].to(latents.device, torch.float32)
        held = ((1 - sigma) * self.x0 + sigma * self.noise).to(latents.dtype)
        if self.mask is None:
            return held
        return latents + self.mask.to(latents.dtype) * (held - latents)


def encode_video(pipe: DiffusionPipeline, frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(F, H, W, 3)`` frames -> the VAE's latents ``(1, C, f, h, w)`` (the distribution's mode: the
    same source gives the same latents), not yet normalised (each family normalises its own way)."""
    video = pipe.video_processor.preprocess_video([frames.astype(np.float32) / 255.0], frames.shape[1], frames.shape[2])
    encoded = pipe.vae.encode(video.to(device, pipe.vae.dtype))
    return encoded.latent_dist.mode() if hasattr(encoded, "latent_dist") else encoded.latents


def latent_mask(mask: np.ndarray, shape: Sequence[int], *, free_first_frame: bool = False) -> torch.Tensor:
    """A pixel mask ``(H, W)`` in [0, 1] as a ``(1, 1, f, h, w)`` latent mask for latents shaped ``shape``: each
    latent cell gets the share of its pixels the mask covers (so the window's border cells are held in part,
    a feathered edge), the same for every latent frame, except latent frame 0 when ``free_first_frame``."""
    frames, height, width = shape[2], shape[3], shape[4]
    cell_h, cell_w = mask.shape[0] // height, mask.shape[1] // width
    cells = mask[: height * cell_h, : width * cell_w].reshape(height, cell_h, width, cell_w).mean(axis=(1, 3))
    result = torch.from_numpy(np.ascontiguousarray(cells, dtype=np.float32))[None, None, None]
    result = result.repeat(1, 1, frames, 1, 1)
    if free_first_frame:
        result[:, :, 0] = 0.0
    return result


def edit_noise(x0: torch.Tensor, seed: int) -> torch.Tensor:
    """The fixed noise an edit's held latents are noised with, drawn on the CPU from the job's seed (a re-run
    makes the same clip) and kept for every step, as SDEdit's single forward noising would be."""
    generator = torch.Generator(device="cpu").manual_seed(seed + 1)
    return torch.randn(tuple(x0.shape), generator=generator, dtype=torch.float32).to(x0.device)


def denoise(
    pipe: DiffusionPipeline,
    plan: Plan,
    inputs: Mapping[str, Any],
    *,
    on_step: StepCallback,
    should_cancel: CancelCheck,
    preview: PreviewSink | None,
    decode_preview: Callable[[torch.Tensor], np.ndarray],
    max_sequence_length: int,
    step_hook: StepHook | None = None,
    total_steps: int | None = None,
) -> np.ndarray:
    """Run ``pipe`` for ``plan`` with the family's conditioning ``inputs``; uint8 frames shaped
    (native_frames, native_height, native_width, 3).

    Raises :class:`GenerationCancelled` as soon as ``should_cancel()`` is true: before denoising, after a
    step, or before any module of the pipeline's models runs (:func:`checked_modules`: the VAE decode too).
    After a step it is raised from inside the step callback, which stops diffusers right there: setting
    ``pipe._interrupt`` instead would skip the remaining steps but still run the full VAE decode for output
    nobody wants. ``preview``, when given and due, gets ``decode_preview(latents)`` after every
    step but the last (the real clip is about to exist then).

    ``on_step(step, total)`` is called from inside that step-end callback, after step ``step`` and before the
    next one starts, so a caller may change the pipeline's state for the next step from it (the lab's
    guidance interval switches ``pipe._guidance_scale`` this way). ``step_hook`` (a video edit's
    :class:`LatentHold`) may replace the latents after each step; ``total_steps`` is how many steps run when
    the pipeline starts part-way (an edit's ``denoise_strength``), for progress.
    """
    out = _run_denoising(pipe, plan, inputs, on_step=on_step, should_cancel=should_cancel, preview=preview,
                         decode_preview=decode_preview, max_sequence_length=max_sequence_length, step_hook=step_hook,
                         total_steps=total_steps, output_type="np")
    frames = np.asarray(out.frames[0])  # (F, H, W, 3) float32 in [0, 1]
    expected = (plan.native_frames, plan.native_height, plan.native_width, 3)
    if frames.shape != expected:
        raise RuntimeError(f"pipeline returned frames shaped {frames.shape}, expected {expected}")
    return to_uint8(frames)


def denoise_latents(
    pipe: DiffusionPipeline,
    plan: Plan,
    inputs: Mapping[str, Any],
    *,
    on_step: StepCallback,
    should_cancel: CancelCheck,
    preview: PreviewSink | None,
    decode_preview: Callable[[torch.Tensor], np.ndarray],
    max_sequence_length: int,
    total_steps: int | None = None,
) -> torch.Tensor:
    """:func:`denoise`, ending in the pipeline's denoised latents (``output_type="latent"``) instead of frames:
    the first stage of a two-stage run, whose latents the next stage refines (no VAE decode in between)."""
    out = _run_denoising(pipe, plan, inputs, on_step=on_step, should_cancel=should_cancel, preview=preview,
                         decode_preview=decode_preview, max_sequence_length=max_sequence_length, step_hook=None,
                         total_steps=total_steps, output_type="latent")
    return out.frames


def _run_denoising(
    pipe: DiffusionPipeline, plan: Plan, inputs: Mapping[str, Any], *, on_step: StepCallback,
    should_cancel: CancelCheck, preview: PreviewSink | None, decode_preview: Callable[[torch.Tensor], np.ndarray],
    max_sequence_length: int, step_hook: StepHook | None, total_steps: int | None, output_type: str,
) -> Any:
    """The pipeline call :func:`denoise` describes, returning the pipeline's own output object."""
    if should_cancel():
        raise GenerationCancelled("cancelled before denoising started")
    total = total_steps or plan.num_inference_steps

    def step_end(pipe: DiffusionPipeline, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if step_hook is not None:
            kwargs["latents"] = step_hook(pipe, i, kwargs["latents"])
        on_step(i + 1, total)
        if should_cancel():
            raise GenerationCancelled(f"cancelled after step {i + 1}/{total}")
        if preview is not None and i + 1 < total and preview.due(i + 1, total):
            preview.deliver(decode_preview(kwargs["latents"]))
        return kwargs

    # Noise is drawn on the CPU so a seed gives the same clip whatever the device.
    generator = torch.Generator(device="cpu").manual_seed(plan.seed)
    with torch.inference_mode(), checked_modules(pipe, should_cancel):
        out = pipe(
            **inputs,
            prompt=plan.prompt,
            **({"negative_prompt": plan.negative_prompt} if plan.negative_prompt is not None else {}),
            height=plan.native_height,
            width=plan.native_width,
            num_frames=plan.native_frames,
            num_inference_steps=plan.num_inference_steps,
            guidance_scale=plan.guidance_scale,
            generator=generator,
            output_type=output_type,
            callback_on_step_end=step_end,
            max_sequence_length=max_sequence_length,
        )
    return out
