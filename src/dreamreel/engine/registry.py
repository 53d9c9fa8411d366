"""Public model names -> loaded backends, imported lazily (torch only loads in worker processes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dreamreel.engine.backends.base import Backend


@dataclass(frozen=True)
class ModelSpec:
    """Where a public model name's weights live and how to run them."""

    family: str
    """Backend family: ``ltx-condition`` (LTX-Video condition pipeline, also the embedded model)."""
    path: Path
    device: str = "cpu"
    dtype: str = "float32"


FAMILIES = ("ltx-condition",)

SETTINGS_FILE = "dreamreel.json"
"""Per-checkpoint defaults beside the weights (native grid, sampler settings); written by the model
builders (tiny model, training export), read by the backend."""


def load_backend(spec: ModelSpec) -> Backend:
    """Import the family's adapter only now, so importing the registry stays cheap and torch-free."""
    if spec.family == "ltx-condition":
        from dreamreel.engine.backends.ltx import LTXConditionBackend

        return LTXConditionBackend(spec.path, device=spec.device, dtype=spec.dtype)
    raise ValueError(f"unknown model family {spec.family!r}; known: {', '.join(FAMILIES)}")


def specs_from_settings(model_dir: Path, device: str, dtype: str) -> dict[str, ModelSpec]:
    """Both public names map to one checkpoint until a models config names separate ones."""
    spec = ModelSpec(family="ltx-condition", path=Path(model_dir), device=device, dtype=dtype)
    return {"ray-2": spec, "ray-flash-2": spec}
