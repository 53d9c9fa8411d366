"""A speed preset's guidance window (``guidance_from``): classifier-free guidance only on the later steps, and
the unconditional pass truly skipped on the steps before them.

Guidance costs a second transformer pass per step. On the embedded model the early, high-noise steps barely need
it (the model card's guidance-interval probe: guiding only steps 10-19 of 20 moves and smears objects as guiding
all 20 does), so a preset may run the first ``guidance_from`` of its steps on the conditional prediction alone.

The diffusers pipelines decide at the start of a call whether guidance runs (they batch the prompt embeddings for
two passes before the first step), so switching the scale per step would still pay for both passes. Instead a
hook on the transformer's forward, outermost (on top of any step cache's hooks), takes the conditional half of
the batched inputs while the window is unguided and answers ``[cond, cond]``: the pipeline's
``uncond + scale * (cond - uncond)`` is then exactly ``cond``, at half the transformer's work. The step-end
callback opens the window; a step cache's state (its last residuals, one batch wide) is reset at that moment, so
its next step runs in full at the new batch size.

Only families whose pipeline runs the two passes as one batch (``speed.BATCHED_GUIDANCE``) take it; the config
reader refuses it for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from diffusers.hooks import HookRegistry, ModelHook

from dreamreel.engine.step_cache import transformers_of

HOOK_NAME = "dreamreel_guidance_window"

StepCallback = Callable[[int, int], None]


class _ConditionalOnly(ModelHook):
    """While ``guided`` is false, run the transformer on the conditional half of a two-pass batch."""

    def __init__(self) -> None:
        super().__init__()
        self.guided = False

    def new_forward(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        forward = self.fn_ref.original_forward
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        if self.guided or not isinstance(hidden, torch.Tensor) or hidden.shape[0] % 2:
            return forward(*args, **kwargs)  # guided, or a single pass (LTX-2's extra guidance passes)
        batch = hidden.shape[0]
        return _doubled(forward(*(_conditional(value, batch) for value in args),
                                **{name: _conditional(value, batch) for name, value in kwargs.items()}))


def _conditional(value: Any, batch: int) -> Any:
    """The second half (the pipelines put the conditional pass second) of a tensor batched for both passes."""
    if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == batch:
        return value[batch // 2:]
    return value


def _doubled(output: Any) -> Any:
    """The transformer's output with every tensor stacked twice along the batch, as if both passes had run."""
    if isinstance(output, torch.Tensor):
        return torch.cat([output, output])
    if isinstance(output, tuple):
        return type(output)(_doubled(item) for item in output)
    if hasattr(output, "keys"):  # a diffusers BaseOutput
        for key in list(output.keys()):
            output[key] = _doubled(output[key])
        return output
    return output


@contextmanager
def guidance_window(pipe: Any, guidance_from: float, steps: int) -> Iterator[StepCallback | None]:
    """While the block runs, the first ``guidance_from`` of the steps of each of ``pipe``'s runs skip the
    unconditional pass; yields the step-end callback that opens guidance after them (call it with the step
    callback's ``(step, total)``), or None when every one of ``steps`` steps is guided."""
    if round(guidance_from * steps) <= 0:
        yield None
        return
    models = transformers_of(pipe)
    hooks = [_ConditionalOnly() for _ in models]
    for model, hook in zip(models, hooks, strict=True):
        HookRegistry.check_if_exists_or_initialize(model).register_hook(hook, HOOK_NAME)

    def step_end(step: int, total: int) -> None:
        # After a pass's last step the next pass (a long clip's next window, a second stage) starts unguided again.
        guided = round(guidance_from * total) <= step < total
        if guided != hooks[0].guided:
            for model, hook in zip(models, hooks, strict=True):
                hook.guided = guided
                model._reset_stateful_cache()  # a step cache's residuals are one batch wide

    try:
        yield step_end
    finally:
        for model in models:
            HookRegistry.check_if_exists_or_initialize(model).remove_hook(HOOK_NAME, recurse=False)
