"""A speed preset's step cache (``engine/speed.py``) as diffusers cache hooks on a loaded pipeline, for one job.

The hooks carry state across a run's steps (the last residual, Taylor factors), so they are put on before a job
and taken off after it, whatever the next job's speed; a worker runs one job at a time per backend. Every
transformer of the pipeline gets them (Wan 2.2 A14B has two experts: ``transformer`` and ``transformer_2``).

The hooks find their modules by name, and a name pattern that matches nothing is silent in diffusers: TaylorSeer's
default patterns (``^transformer_blocks.*attn``, matched in full) miss LTX-Video's ``attn1``/``attn2`` and every
other model whose attention is numbered, so the cache would be on and change nothing. Here TaylorSeer is aimed at
the model's own repeated blocks (:func:`block_patterns`, read from the loaded model), and a cache that hooked no
module is an error rather than a silent full-price run.
"""

from __future__ import annotations

import ast
import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import torch
from diffusers.hooks import (
    FirstBlockCacheConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
)
from diffusers.models.cache_utils import CacheMixin

from dreamreel.engine.backends.base import TRANSFORMER_ATTRS
from dreamreel.engine.speed import CacheSpec


class CacheNotAttached(RuntimeError):
    """A step cache matched no module of the model: it would have run at full cost."""


def transformers_of(pipe: Any) -> list[CacheMixin]:
    """The pipeline's denoising transformers that take diffusers' cache hooks."""
    return [model for name in TRANSFORMER_ATTRS
            if isinstance(model := getattr(pipe, name, None), CacheMixin)]


def block_patterns(model: torch.nn.Module) -> list[str]:
    """Full-match name patterns of the model's repeated transformer blocks: every direct child that is a
    ``ModuleList`` of at least two modules (``transformer_blocks`` in LTX-Video and LTX-2, ``blocks`` in Wan)."""
    return [rf"{name}\.\d+" for name, child in model.named_children()
            if isinstance(child, torch.nn.ModuleList) and len(child) >= 2]


def hook_count(model: torch.nn.Module) -> int:
    """Diffusers hooks on ``model``'s modules (a cache's, an offload's, any other)."""
    registries = (getattr(module, "_diffusers_hook", None) for module in model.modules())
    return sum(len(getattr(registry, "hooks", None) or ()) for registry in registries)


PAB_TIMESTEPS = (100, 800)
"""Where Pyramid Attention Broadcast re-uses attention: the middle of the schedule (diffusers' documented range);
the first and last steps, where attention changes most, always run."""

CacheConfig = FirstBlockCacheConfig | TaylorSeerCacheConfig | PyramidAttentionBroadcastConfig | MagCacheConfig
MAGCACHE_LOGGER = "diffusers.hooks.mag_cache"
MAGCACHE_RESULTS = "MagCache Calibration Results: "
"""How diffusers 0.42 reports a calibration run's ratios (a log line; the hook's state is reset right after)."""


def diffusers_config(spec: CacheSpec, model: torch.nn.Module, pipe: Any, steps: int | None = None) -> CacheConfig:
    if spec.kind == "first-block":
        return FirstBlockCacheConfig(threshold=spec.threshold)
    if spec.kind == "taylorseer":
        # float32 factors: the default bfloat16 ones drift from a float32 model's outputs for no speed gain here.
        return TaylorSeerCacheConfig(cache_interval=spec.interval, disable_cache_before_step=spec.warmup,
                                     taylor_factors_dtype=torch.float32, cache_identifiers=block_patterns(model))
    if spec.kind == "pab":
        return PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=spec.interval, spatial_attention_timestep_skip_range=PAB_TIMESTEPS,
            spatial_attention_block_identifiers=tuple(block_patterns(model)),
            current_timestep_callback=lambda: pipe.current_timestep)
    if spec.kind == "magcache":
        if steps is None:
            raise ValueError("a magcache needs the job's steps (its ratios are resampled to them)")
        return MagCacheConfig(threshold=spec.threshold, max_skip_steps=spec.interval,
                              retention_ratio=min(1.0, spec.warmup / steps), num_inference_steps=steps,
                              mag_ratios=list(spec.ratios))
    raise ValueError(f"no diffusers cache for kind {spec.kind!r}")


@contextmanager
def step_cache(pipe: Any, spec: CacheSpec, steps: int | None = None) -> Iterator[int]:
    """``spec``'s hooks on every transformer of ``pipe`` while the block runs (``steps``: the job's, which a
    magcache needs); yields how many hooks it added (0 for ``kind = "none"``). Raises :class:`CacheNotAttached`
    when a cache matched no module."""
    if not spec.enabled:
        yield 0
        return
    models = transformers_of(pipe)
    if spec.kind == "magcache" and len(models) > 1:
        raise CacheNotAttached(f"a magcache's ratios describe one transformer; {type(pipe).__name__} has "
                               f"{len(models)}")
    before = sum(hook_count(model) for model in models)
    enabled: list[CacheMixin] = []
    try:
        for model in models:
            try:
                model.enable_cache(diffusers_config(spec, model, pipe, steps))
            except ValueError as exc:  # e.g. a block class diffusers' first-block cache has no entry for
                raise CacheNotAttached(f"the {spec.kind} cache cannot attach to {type(model).__name__}: {exc}") \
                    from None
            enabled.append(model)
        hooked = sum(hook_count(model) for model in models) - before
        if hooked <= 0:
            raise CacheNotAttached(f"the {spec.kind} cache matched no module of {type(pipe).__name__}'s "
                                   "transformer: it would run every step at full cost")
        yield hooked
    finally:
        for model in enabled:
            model.disable_cache()


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def calibrate_magcache(pipe: Any, steps: int, run: Callable[[], object]) -> list[float]:
    """MagCache's magnitude ratios for ``pipe``'s transformer: ``run()`` (one generation of ``steps`` steps) with
    diffusers' calibration hooks on, which skip nothing and report the mean ratio of each step's residual norm
    to the previous step's. Raises :class:`CacheNotAttached` when the model takes no MagCache hooks."""
    models = transformers_of(pipe)
    if len(models) != 1:
        raise CacheNotAttached(f"a magcache calibrates one transformer; {type(pipe).__name__} has {len(models)}")
    model = models[0]
    capture = _Messages()
    source = logging.getLogger(MAGCACHE_LOGGER)
    level, propagate = source.level, source.propagate
    source.addHandler(capture)
    source.setLevel(logging.INFO)
    source.propagate = False  # diffusers' own handler would print the ratios too
    try:
        try:
            model.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=steps))
        except ValueError as exc:
            raise CacheNotAttached(f"the magcache cannot attach to {type(model).__name__}: {exc}") from None
        try:
            with redirect_stdout(io.StringIO()):  # diffusers also prints the ratios
                run()
        finally:
            model.disable_cache()
    finally:
        source.removeHandler(capture)
        source.setLevel(level)
        source.propagate = propagate
    reports = [m.removeprefix(MAGCACHE_RESULTS) for m in capture.messages if m.startswith(MAGCACHE_RESULTS)]
    if not reports:
        raise CacheNotAttached(f"the magcache calibration on {type(model).__name__} reported no ratios")
    return [float(ratio) for ratio in ast.literal_eval(reports[-1])]
