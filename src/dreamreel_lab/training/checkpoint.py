"""Atomic, resumable training checkpoints and an append-only JSON-lines log per stage."""

from __future__ import annotations

import json
import math
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


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load ``weights`` (EMA shadows are float32) into ``module``, each cast to the dtype the module holds."""
    dtypes = {key: value.dtype for key, value in module.state_dict().items()}
    module.load_state_dict({key: value.to(dtypes[key]) for key, value in weights.items()})


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
        load_weights(module, self.shadow)


def warmup_cosine(step: int, *, peak: float, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor * peak`` at ``total`` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class StageRun:
    """One stage's module, optimizer, EMA and counters: resumed and saved together, atomically."""

    def __init__(self, path: Path, log: StageLog, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 ema_decay: float) -> None:
        self.path, self.log, self.module, self.optimizer = path, log, module, optimizer
        self.ema = EMA(module, ema_decay)
        self.step, self.hours = 0, 0.0
        state = load_checkpoint(path)
        if state is not None:
            module.load_state_dict(state["model"])
            if state["optimizer"] is not None:  # None: weights from elsewhere (a shipped model, a deepened net)
                optimizer.load_state_dict(state["optimizer"])
            self.ema.shadow = state["ema"]
            self.step, self.hours = state["step"], state["hours"]
            log.write(event="resume", step=self.step, hours=round(self.hours, 3))
        self._started, self._hours_at_start = time.monotonic(), self.hours

    def out_of_time(self, max_hours: float | None) -> bool:
        return max_hours is not None and (time.monotonic() - self._started) / 3600 >= max_hours

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def learn(self, loss: torch.Tensor, max_grad_norm: float = 1.0) -> None:
        """One optimiser step on ``loss``, gradients clipped to ``max_grad_norm``; then the EMA and counters."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), max_grad_norm)
        self.optimizer.step()
        self.finish_step()

    def finish_step(self) -> None:
        """After ``optimizer.step()``: update the EMA and the counters."""
        self.ema.update(self.module, self.step)
        self.step += 1
        self.hours = self._hours_at_start + (time.monotonic() - self._started) / 3600

    def save(self) -> None:
        save_checkpoint(self.path, {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                                    "ema": self.ema.shadow, "step": self.step, "hours": self.hours})
