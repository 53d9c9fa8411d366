"""Public model names -> loaded backends, imported lazily (torch only loads in worker processes)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dreamreel.engine.catalog import ModelSpec

if TYPE_CHECKING:
    from dreamreel.engine.backends.base import Backend


BACKENDS: dict[str, tuple[str, str]] = {
    "ltx-condition": ("dreamreel.engine.backends.ltx", "LTXConditionBackend"),
    "wan-t2v": ("dreamreel.engine.backends.wan", "WanT2VBackend"),
    "wan-i2v": ("dreamreel.engine.backends.wan", "WanI2VBackend"),
    "wan-flf2v": ("dreamreel.engine.backends.wan", "WanFLF2VBackend"),
    "wan-vace": ("dreamreel.engine.backends.wan", "WanVACEBackend"),
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
    return backend_class(spec.path, device=spec.device, dtype=spec.dtype)
