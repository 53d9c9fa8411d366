"""Regional compilation: a loaded model's repeated transformer blocks through ``torch.compile``, once at load.

A video diffusion transformer is one block class repeated dozens of times and called every denoising step, so
compiling that block (diffusers' ``ModelMixin.compile_repeated_blocks``, the classes a model lists in
``_repeated_blocks``) gets the speed of a whole-model compile for the compile time of one block: every instance
shares the block's code and so its compiled graph. Nothing else of the pipeline (text encoder, VAE, scheduler) is
compiled: they run once per clip.

**Compiled once, kept warm.** ``torch.compile`` is lazy: the graph is built on the first call. :func:`compile_loaded`
therefore runs a short warm-up generation right after compiling, so a worker pays the compile while it loads and
its first job runs warm. The blocks are compiled with ``dynamic=True`` by default: the token count follows the
request (aspect ratio, keyframes and extensions add frames), and a static graph per shape would recompile for each
new one (dynamo gives up after ``recompile_limit``, 8, and silently runs eagerly). One dynamic graph serves every
shape, except where a size of 1 is specialised: LTX-Video's timestep embedding is per clip ``(B, 1, D)`` without a
keyframe and per token ``(B, N, D)`` with one, so the warm-up runs a plain clip and, where the family takes a start
image, a clip with one (two graphs; measured in ``bench/bench_compile.py``). ``compile_dynamic=False`` compiles one
static graph per shape instead (faster kernels for a fleet that serves one size).

**Cancelling.** The per-module cancel check (``backends/common.checked_modules``) is not traced into a compiled
block, where it would break the graph at every module: the compiled blocks run unchecked, and a cancel is seen by
the modules that run eagerly around them (the transformer's input and output layers, each step) and between steps.

**A failure is loud.** A compile that fails at load raises :class:`CompileError` naming the setting to switch
off, and the worker does not start. Falling back to eager with a warning was the alternative; it is refused
because the operator asked for compilation to get a throughput the fleet is sized on: a worker that quietly runs
eagerly is slower than planned with only a log line to show for it, and a compile failure is a fixed property of
the torch version, model and device, so it shows on the first start and is fixed once, by the operator.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from dreamreel.core.capabilities import FAMILY_CONTROLS, FAMILY_NEEDS
from dreamreel.core.conditioning import Control
from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.backends.base import TRANSFORMER_ATTRS, Backend, GenerationCancelled
from dreamreel.engine.plan import plan_generation

if TYPE_CHECKING:  # imported where used: compile_regions alone runs where PyAV is absent (bench/device_check.py)
    import torch

    from dreamreel.engine.catalog import Catalog, ModelSpec
    from dreamreel.engine.speed import CacheSpec

log = logging.getLogger("dreamreel.engine.compile")

CompileMode = Literal["off", "regional"]
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)

BLOCK_LIST_ATTRS = ("transformer_blocks", "blocks")
"""Where a transformer without ``_repeated_blocks`` keeps its blocks (LTX: the first; Wan: the second)."""
WARM_UP_STEPS = 2
"""Denoising steps of the warm-up clips: the graph is built on the first call; two reach both experts of a
two-expert Wan 2.2 model (the second expert takes over below a boundary timestep)."""


class CompileError(RuntimeError):
    """Compiling the model's transformer blocks failed at load (the message names the setting that turns it off)."""


@dataclass(frozen=True)
class CompileOptions:
    """What ``DREAMREEL_COMPILE*`` asks for (``config.Settings``)."""

    mode: CompileMode = "off"
    backend: str = "inductor"
    """The ``torch.compile`` backend: ``inductor`` generates kernels (Triton on CUDA, C++ on the CPU, which needs a
    C++ compiler); ``aot_eager`` and ``eager`` capture the graph without generating code (tests)."""
    dynamic: bool = True
    """Compile for symbolic sizes (one graph for every request shape) rather than one graph per shape."""


@dataclass(frozen=True)
class CompileReport:
    modules: tuple[str, ...]
    """The compiled blocks' qualified names, e.g. ``transformer.transformer_blocks.0``."""
    seconds: float
    """Compile plus warm-up, at load."""
    graphs: int
    """Graphs dynamo built during the warm-up (``torch._dynamo.utils.counters['stats']['unique_graphs']``)."""
    passes: int
    """Warm-up generations run (:func:`warm_up`)."""


def transformers(pipe: object) -> Iterator[tuple[str, torch.nn.Module]]:
    """The pipeline's denoising transformers, by attribute name."""
    for attr in TRANSFORMER_ATTRS:
        module = getattr(pipe, attr, None)
        if module is not None:
            yield attr, module


def compile_regions(pipe: object, *, backend: str = "inductor", dynamic: bool | None = True,
                    fullgraph: bool = False) -> tuple[str, ...]:
    """``torch.compile`` each repeated block of ``pipe``'s transformer(s), in place (lazily: nothing is built until
    the first call); returns the compiled blocks' names. A model declaring ``_repeated_blocks`` (every LTX-Video,
    LTX-2 and Wan transformer of diffusers 0.42) is compiled by its own ``compile_repeated_blocks``; another one
    block by block from its block list. ``fullgraph`` stays off by default: a graph break costs a little speed,
    an error at load costs the worker."""
    compiled: list[str] = []
    for attr, transformer in transformers(pipe):
        repeated = tuple(getattr(transformer, "_repeated_blocks", None) or ())
        if repeated:
            transformer.compile_repeated_blocks(backend=backend, dynamic=dynamic, fullgraph=fullgraph)
            compiled += [f"{attr}.{name}" for name, module in transformer.named_modules()
                         if type(module).__name__ in repeated]
            continue
        list_name = next((name for name in BLOCK_LIST_ATTRS if hasattr(transformer, name)), None)
        if list_name is None:
            raise CompileError(f"{type(transformer).__name__} declares no _repeated_blocks and has no block list "
                               f"({' or '.join(BLOCK_LIST_ATTRS)}): nothing to compile regionally")
        for index, block in enumerate(getattr(transformer, list_name)):
            block.compile(backend=backend, dynamic=dynamic, fullgraph=fullgraph)
            compiled.append(f"{attr}.{list_name}.{index}")
    if not compiled:
        raise CompileError(f"{type(pipe).__name__} has no transformer ({' or '.join(TRANSFORMER_ATTRS)}) to compile")
    return tuple(compiled)


def is_compiled(module: torch.nn.Module) -> bool:
    """Whether ``module`` was compiled in place (``nn.Module.compile``)."""
    return getattr(module, "_compiled_call_impl", None) is not None


def graphs_built() -> int:
    """Graphs dynamo has built in this process so far (a recompile adds one)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def check_toolchain(backend: str, device: str) -> None:
    """Inductor on the CPU compiles C++: say so at once rather than deep in a warm-up traceback."""
    if backend != "inductor" or device.startswith("cuda"):
        return
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise CompileError(f"the inductor compile backend on {device} needs a C++ compiler, and {compiler!r} is not "
                           "on PATH: install one (Debian: g++), set CXX, or set DREAMREEL_COMPILE=off")


def warm_up_requests(family: str) -> list[GenerationRequest]:
    """The clips a warm-up generates: the default request (the commonest job's shape), and the same with a start
    image where the family takes one (a keyframe changes the transformer's input layout, see the module's doc);
    a family that needs images gets them in both."""
    needs = {group[0] for group in FAMILY_NEEDS.get(family, ())}
    image = ImageKeyframe(url="https://example.com/warm-up.png")  # its pixels are given to the backend directly

    def request(start: bool) -> GenerationRequest:
        start = start or Control.START_IMAGE in needs
        end = Control.END_IMAGE in needs
        keyframes = Keyframes(frame0=image if start else None, frame1=image if end else None) if start or end else None
        return GenerationRequest(prompt="a red ball bounces on green grass", keyframes=keyframes)

    requests = [request(start=False)]
    if Control.START_IMAGE in FAMILY_CONTROLS.get(family, frozenset()) and Control.START_IMAGE not in needs:
        requests.append(request(start=True))
    return requests


class StopAfterLastStep:
    """A step callback and cancel check that stop a generation once its last step ran, before the decode."""

    def __init__(self) -> None:
        self.done = False

    def on_step(self, step: int, total: int) -> None:
        self.done = step >= total

    def should_cancel(self) -> bool:
        return self.done


def warm_up_guidances(default: float) -> tuple[float, ...]:
    """Guidance scales a warm-up runs: the model's, and 1 (no classifier-free guidance) where that differs. Above
    1 the pipelines batch the unconditional pass with the conditional one, so the batch is 2 instead of 1, and a
    size of 1 is compiled as a constant (a speed preset may lower the guidance to 1)."""
    return (default,) if default <= 1 else (default, 1.0)


def warm_up(backend: Backend, caches: Iterable[CacheSpec] = ()) -> int:
    """Run each of :func:`warm_up_requests` at each of :func:`warm_up_guidances` for ``WARM_UP_STEPS`` steps, then the
    default request once under each step cache in ``caches`` (a speed preset's hooks run inside the compiled blocks
    and trace graphs of their own), long enough to reach the cache's reuse; keyframes are mid-grey. Each pass stops
    after its last step, so the VAE never decodes (the cancel the step callback honours). Returns the passes run."""
    from dreamreel.engine.speed import CacheSpec
    from dreamreel.engine.step_cache import step_cache

    grid = backend.native_grid()
    runs: list[tuple[GenerationRequest, float, int, CacheSpec]] = [
        (request, guidance, WARM_UP_STEPS, CacheSpec())
        for request in warm_up_requests(backend.name) for guidance in warm_up_guidances(backend.default_guidance)
    ]
    default = warm_up_requests(backend.name)[0]
    runs += [(default, backend.default_guidance, max(WARM_UP_STEPS, cache.warmup + 2 * cache.interval), cache)
             for cache in dict.fromkeys(caches) if cache.enabled]
    for request, guidance, steps, cache in runs:
        plan = plan_generation(request, grid, seed=0, steps=steps, guidance_scale=guidance)
        pixels = [np.full((c.num_frames, plan.native_height, plan.native_width, 3), 128, np.uint8)
                  for c in plan.conditions]
        stop = StopAfterLastStep()
        with step_cache(backend.pipe, cache, steps), suppress(GenerationCancelled):  # the decode is skipped on purpose
            backend.generate(plan, stop.on_step, stop.should_cancel, pixels)
    return len(runs)


def served_caches(catalog: Catalog, spec: ModelSpec) -> list[CacheSpec]:
    """The step caches of every speed preset of every public name ``catalog`` serves from ``spec``'s checkpoint."""
    return [preset.cache for entry in catalog.models.values() if entry.spec == spec for preset in entry.speeds.values()]


def compile_loaded(backend: Backend, options: CompileOptions, caches: Iterable[CacheSpec] = ()) -> CompileReport | None:
    """Compile ``backend``'s transformer blocks as ``options`` ask and warm them up (with the step ``caches`` its
    speed presets use, :func:`warm_up`); None when ``mode`` is off.

    Raises :class:`CompileError` (the cause chained) when compiling or the warm-up fails: see the module's doc
    for why a failure stops the worker rather than falling back to eager."""
    if options.mode == "off":
        return None
    device = str(getattr(backend, "device", "cpu"))
    label = f"{backend.name} ({getattr(backend, 'model_dir', '?')})"
    check_toolchain(options.backend, device)
    started = time.perf_counter()
    graphs = graphs_built()
    try:
        modules = compile_regions(backend.pipe, backend=options.backend, dynamic=options.dynamic)
        passes = warm_up(backend, caches)
    except CompileError:
        raise
    except Exception as exc:
        raise CompileError(f"DREAMREEL_COMPILE={options.mode} (backend {options.backend}): compiling {label} failed: "
                           f"{type(exc).__name__}: {exc}; set DREAMREEL_COMPILE=off to run it eagerly") from exc
    report = CompileReport(modules=modules, seconds=time.perf_counter() - started, graphs=graphs_built() - graphs,
                           passes=passes)
    log.info("compiled %d blocks of %s (%s, %s, dynamic=%s) and warmed up in %.1fs: %d graph(s) over %d pass(es)",
             len(modules), label, options.mode, options.backend, options.dynamic, report.seconds, report.graphs,
             passes)
    return report
