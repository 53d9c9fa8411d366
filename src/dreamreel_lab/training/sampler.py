"""How the lab samples a model: the service's own LTX backend, plus two experiment settings the service does not serve.

* a trained rotary position embedding (``rope`` in ``dreamreel.json``, written by ``export`` for a run trained
  with ``--rope grid``): the service refuses such a checkpoint; :func:`load_backend` loads it and sets it up;
* a guidance interval (``dreamreel-lab eval --guidance-min-sigma``): :func:`guidance_interval` switches
  classifier-free guidance off for the low-noise steps, from the backend's step callback.

Everything else (planning, conditioning, the denoising loop, decoding) is the code path the server runs.
"""

from __future__ import annotations

from pathlib import Path

from dreamreel.engine.backends.base import StepCallback
from dreamreel.engine.backends.common import DType
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.model_dir import read_settings
from dreamreel.engine.plan import Plan
from dreamreel_lab.training.architecture import tune_rope

UNGUIDED = 1.0 + 1e-6
"""The guidance scale of an unguided step inside a guided call: the conditional prediction, to float precision,
while the pipeline keeps running the unconditional pass it was set up for."""


def load_backend(model_dir: Path, device: str = "cpu", dtype: DType = "float32") -> LTXConditionBackend:
    """``model_dir`` through the service's LTX backend, with the position embedding its ``dreamreel.json`` names.

    The backend is handed the settings file minus ``rope`` (which it would refuse), and the loaded transformer
    is then tuned (:func:`~dreamreel_lab.training.architecture.tune_rope`); a checkpoint without ``rope`` loads
    exactly as the service loads it."""
    settings = read_settings(model_dir)
    served = {key: value for key, value in settings.items() if key != "rope"}
    backend = LTXConditionBackend(model_dir, device=device, dtype=dtype, settings=served)
    tune_rope(backend.pipe.transformer, settings.get("rope"))
    return backend


def guidance_interval(backend: LTXConditionBackend, plan: Plan, min_sigma: float,
                      on_step: StepCallback | None = None) -> StepCallback:
    """An ``on_step`` for ``backend.generate(plan, ...)`` that limits classifier-free guidance to the steps whose
    noise level sigma is at least ``min_sigma`` (a guidance interval); later steps use the conditional prediction
    alone. ``min_sigma`` 0 (or a plan with guidance 1) changes nothing; ``on_step``, when given, is called too.

    Why it exists: on the embedded model, guidance 6 on the low-noise steps is what stretches a moving object
    into a streak (``bench/probe_motion.py``, model card). It is not the embedded model's setting: guided only
    above sigma 0.976, its clips move half as much and ``dreamreel-lab eval --prompts 200`` falls from 49.0 to
    46.3 % (colour 93.75 -> 88 %, motion 21 -> 14.75 %). A setting for checkpoints it measures better on.

    How: the service's ``denoise`` calls ``on_step(step, total)`` from the pipeline's step-end callback, after
    step ``step`` and before the next, so the scale for the next step is set there from the scheduler's
    timesteps. "Off" is a scale of :data:`UNGUIDED` rather than 1, because the diffusers pipelines decide whether
    to run the unconditional pass from ``guidance_scale > 1`` and the LTX pipeline batched its prompt embeddings
    for two passes before the first step.
    """
    pipe = backend.pipe
    guided = plan.guidance_scale > 1.0 and min_sigma > 0.0

    def step_end(step: int, total: int) -> None:
        if guided and step < len(pipe.scheduler.timesteps):
            sigma = float(pipe.scheduler.timesteps[step]) / 1000.0
            pipe._guidance_scale = plan.guidance_scale if sigma >= min_sigma else UNGUIDED
        if on_step is not None:
            on_step(step, total)

    return step_end
