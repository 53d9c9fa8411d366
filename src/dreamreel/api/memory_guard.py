"""Refuse at submission a request whose clip cannot fit its model's GPU memory budget (a 422 naming the limit).

The worker would run such a request under its most frugal memory plan and fail it out of memory minutes
later; the API process, which loads no model, can tell at once from the checkpoint's files
(``engine/memory.py``, torch-free). Core calls the check this module builds (``GenerationService.memory_check``)
and knows nothing of checkpoints.

**The size is the worker's, computed the same way without loading the model**: the native grid from the
checkpoint's VAE and transformer configs and its ``dreamreel.json`` with the config's native-grid keys over
it (``engine.memory.native_grid``, as ``engine.registry.load_backend`` applies them), and the planner's own
arithmetic (``engine.plan.plan_generation``: the request's aspect and duration, plus the frames a loop or an
extension adds). A video edit is sized like
a new clip of its output's length (its source frames come on top only as conditioning, a small share). A
request the planner refuses is left to the checks that refuse it, and a model whose checkpoint is not on this
machine (not pulled yet, or served from another host) is not checked here: its worker still fails a job
that runs out of memory with ``out_of_memory`` (``worker/faults.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dreamreel.core.capabilities import pins_last_frame
from dreamreel.core.errors import NotSupported
from dreamreel.core.request import GenerationRequest
from dreamreel.engine.catalog import Catalog, ModelEntry
from dreamreel.engine.memory import FAMILIES, GIB, MemoryEstimate, checkpoint_parameters, estimate_peak_bytes, gib
from dreamreel.engine.memory import native_grid as checkpoint_grid
from dreamreel.engine.plan import plan_generation

log = logging.getLogger("dreamreel.api")

MemoryCheck = Callable[[GenerationRequest], None]


def memory_check(catalog: Catalog) -> MemoryCheck | None:
    """The submit-time check for ``catalog``'s budgeted models; None when no model has a budget (nothing to
    check). A budgeted model of a family without memory facts is logged once and not checked."""
    budgeted: dict[str, ModelEntry] = {}
    for name, entry in catalog.models.items():
        if entry.memory_budget_gb is None:
            continue
        if entry.family not in FAMILIES:
            log.warning("model %s: no memory facts for family %s; its memory budget is not checked at submission",
                        name, entry.family)
            continue
        budgeted[name] = entry
    if not budgeted:
        return None

    def check(request: GenerationRequest) -> None:
        entry = budgeted.get(request.model)
        if entry is not None:
            check_fits(request, entry)

    return check


def check_fits(request: GenerationRequest, entry: ModelEntry) -> None:
    """Raise :class:`NotSupported` (field ``resolution``) when ``request`` needs more than ``entry``'s budget
    under every memory plan; the message names the estimate, the clip and the budget."""
    assert entry.memory_budget_gb is not None
    try:
        if not checkpoint_parameters(entry.path):
            return  # no weights here to size: the worker's out-of-memory handling is what remains
        native = native_clip(request, entry)
        if native is None:
            return
        width, height, frames = native
        estimate = estimate_peak_bytes(entry.family, entry.path, width, height, frames, entry.dtype,
                                       budget_bytes=int(entry.memory_budget_gb * GIB))
    except (OSError, ValueError) as exc:  # an unreadable checkpoint is `models check`'s to report, not a 500 here
        log.warning("model %s: memory budget not checked: %s", request.model, exc)
        return
    if not estimate.fits:
        raise NotSupported(refusal(request, entry, native, estimate), field="resolution")


def native_clip(request: GenerationRequest, entry: ModelEntry) -> tuple[int, int, int] | None:
    """(width, height, frames) the worker will generate ``request`` at, or None when the planner refuses it."""
    grid = checkpoint_grid(entry.family, entry.path, dict(entry.native))
    try:
        plan = plan_generation(request, grid, seed=0, steps=1, guidance_scale=1.0,
                               pin_last_frame=pins_last_frame(entry.family))
    except ValueError:
        return None
    return plan.native_width, plan.native_height, plan.native_frames


def refusal(request: GenerationRequest, entry: ModelEntry, native: tuple[int, int, int],
            estimate: MemoryEstimate) -> str:
    width, height, frames = native
    asked = (f"{request.size[0]}x{request.size[1]}" if request.size
             else f"{request.resolution.value} {request.aspect_ratio.value}")
    return (f"this clip needs about {gib(estimate.peak_bytes)} GiB of GPU memory at {asked} {request.duration_s} s "
            f"({width}x{height}, {frames} frames natively, even with {estimate.plan.replace('_', ' ')}); model "
            f"{request.model}'s memory budget is {entry.memory_budget_gb:g} GiB: ask for a shorter clip or a "
            "narrower aspect ratio")
