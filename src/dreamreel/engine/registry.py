"""Public model names -> loaded backends, imported lazily (torch only loads in worker processes)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dreamreel.engine.catalog import ModelSpec
from dreamreel.engine.model_dir import read_settings

if TYPE_CHECKING:
    from dreamreel.engine.backends.base import Backend


BACKENDS: dict[str, tuple[str, str]] = {
    "ltx-condition": ("dreamreel.engine.backends.ltx", "LTXConditionBackend"),
    "wan-t2v": ("dreamreel.engine.backends.wan", "WanT2VBackend"),
    "wan-i2v": ("dreamreel.engine.backends.wan", "WanI2VBackend"),
    "wan-flf2v": ("dreamreel.engine.backends.wan", "WanFLF2VBackend"),
    "wan-vace": ("dreamreel.engine.backends.wan", "WanVACEBackend"),
    "ltx2": ("dreamreel.engine.backends.ltx2", "LTX2Backend"),
    "wan22-ti2v": ("dreamreel.engine.backends.wan", "WanTI2VBackend"),
    "wan22-t2v": ("dreamreel.engine.backends.wan", "WanA14BT2VBackend"),
    "wan22-i2v": ("dreamreel.engine.backends.wan", "WanA14BI2VBackend"),
}
"""Family -> (module, class) of its adapter, imported only when a worker loads one (they import torch)."""

FAMILIES = tuple(BACKENDS)
"""Families with a backend: every row of ``core.capabilities.FAMILY_CONTROLS``."""

def load_backend(spec: ModelSpec) -> Backend:
    """Import the family's adapter only now, so importing the registry stays cheap and torch-free."""
    if spec.family not in BACKENDS:
        raise ValueError(f"unknown model family {spec.family!r}; known: {', '.join(FAMILIES)}")
    module, class_name = BACKENDS[spec.family]
    backend_class = getattr(importlib.import_module(module), class_name)
    # Only a budgeted model passes one: every backend takes ``memory_budget_gb`` (backends/common.py, memory plans).
    budget = {} if spec.memory_budget_gb is None else {"memory_budget_gb": spec.memory_budget_gb}
    # The config's native-grid keys (``short_side``, ``fps``, ``max_frames``) override the checkpoint's own
    # ``dreamreel.json``: a checkpoint pulled from the hub has none, and one family covers 480p and 720p ones.
    settings = {"settings": {**read_settings(spec.path), **dict(spec.native)}} if spec.native else {}
    return backend_class(spec.path, device=spec.device, dtype=spec.dtype, **budget, **settings)
