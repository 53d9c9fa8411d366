"""bf16 autocast is chosen by measurement, and the measurement works inside a no_grad stage."""

from __future__ import annotations

import torch

from dreamreel_lab.training.precision import SPEEDUP_NEEDED, bf16_speedup, use_bf16


def test_an_explicit_choice_wins_and_auto_follows_the_measurement() -> None:
    assert use_bf16(True) is True and use_bf16(False) is False
    with torch.no_grad():  # the latent-cache stage asks from inside no_grad
        auto = use_bf16(None)
    assert auto == (bf16_speedup() >= SPEEDUP_NEEDED)
    assert bf16_speedup() > 0
