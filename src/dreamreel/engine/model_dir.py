"""What a model directory declares beside its weights: ``dreamreel.json`` (family, native grid, sampler settings).

Plain JSON, no torch: the API process reads the family from it to pick the capability table, a backend its
defaults. Its own module so backends and the registry both read it without importing each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SETTINGS_FILE = "dreamreel.json"
"""Per-checkpoint defaults beside the weights (family, native grid, sampler settings); written by the model
builders (tiny models, training export), read by the backend and, for the family, by the API."""


def read_settings(model_dir: Path) -> dict[str, Any]:
    """``dreamreel.json`` from the model directory, or ``{}`` for checkpoints that do not have one.

    Plain JSON, no torch: the API process reads the family from it to pick the capability table.
    """
    path = Path(model_dir) / SETTINGS_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data
