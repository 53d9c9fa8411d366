"""Public model names -> loaded backends, imported lazily (torch only loads in worker processes)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dreamreel.core.request import PUBLIC_MODELS
from dreamreel.engine.model_dir import SETTINGS_FILE, read_settings

if TYPE_CHECKING:
    from dreamreel.engine.backends.base import Backend


@dataclass(frozen=True)
class ModelSpec:
    """Where a public model name's weights live and how to run them."""

    family: str
    """Backend family, one of :data:`FAMILIES`: ``ltx-condition`` (LTX-Video condition pipeline, also the
    embedded model), ``wan-t2v``, ``wan-i2v``, ``wan-flf2v`` or ``wan-vace`` (Wan 2.x pipelines)."""
    path: Path
    device: str = "cpu"
    dtype: str = "float32"


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

DEFAULT_FAMILY = "ltx-condition"
"""Family of a checkpoint whose ``dreamreel.json`` is absent or names none (a plain LTX-Video export)."""

def model_family(model_dir: Path) -> str:
    """The backend family a checkpoint declares in ``dreamreel.json`` (``family``), else ``ltx-condition``.

    Not checked against :data:`FAMILIES` here: the API reads this without torch and refuses every
    control for a family it has no capability row for; loading it in the worker fails naming the family.
    """
    family = read_settings(model_dir).get("family", DEFAULT_FAMILY)
    if not isinstance(family, str) or not family:
        raise ValueError(f"{Path(model_dir) / SETTINGS_FILE}: family must be a non-empty string, got {family!r}")
    return family


def load_backend(spec: ModelSpec) -> Backend:
    """Import the family's adapter only now, so importing the registry stays cheap and torch-free."""
    if spec.family not in BACKENDS:
        raise ValueError(f"unknown model family {spec.family!r}; known: {', '.join(FAMILIES)}")
    module, class_name = BACKENDS[spec.family]
    backend_class = getattr(importlib.import_module(module), class_name)
    return backend_class(spec.path, device=spec.device, dtype=spec.dtype)


def specs_from_settings(model_dir: Path, device: str, dtype: str) -> dict[str, ModelSpec]:
    """Both public names map to one checkpoint until a models config names separate ones; its family
    comes from its ``dreamreel.json``."""
    spec = ModelSpec(family=model_family(Path(model_dir)), path=Path(model_dir), device=device, dtype=dtype)
    return dict.fromkeys(PUBLIC_MODELS, spec)
