"""Atomic, resumable training checkpoints and an append-only JSON-lines log per stage."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temp file and rename: a kill mid-save leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


class StageLog:
    """``<work_dir>/<stage>.jsonl``: one line per report, with the wall hours spent so far."""

    def __init__(self, work_dir: Path, stage: str) -> None:
        self.path = work_dir / f"{stage}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **fields: Any) -> None:
        fields = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
        with self.path.open("a") as handle:
            handle.write(json.dumps(fields) + "\n")
        print(json.dumps(fields), flush=True)


class EMA:
    """Exponential moving average of parameters: samples from averaged weights are much cleaner."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # warm up: early weights are not worth keeping
        for key, value in module.state_dict().items():
            if value.dtype.is_floating_point:
                self.shadow[key].lerp_(value.float(), 1 - decay)
            else:
                self.shadow[key].copy_(value)

    def copy_to(self, module: torch.nn.Module) -> None:
        module.load_state_dict({k: v.to(module.state_dict()[k].dtype) for k, v in self.shadow.items()})
