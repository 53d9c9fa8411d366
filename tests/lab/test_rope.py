"""The position embedding a model trains with is the one the lab samples it with, ``grid`` suits its grid,
and the service refuses a checkpoint that carries one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.tiny_model import build_tiny_ltx
from dreamreel_lab.training.architecture import (
    LATENT_CHANNELS,
    ROPES,
    TEXT_DIM,
    TRANSFORMER_HEADS,
    make_transformer,
    tune_rope,
)
from dreamreel_lab.training.flow_stage import video_coords
from dreamreel_lab.training.sampler import load_backend

CELL = {2: 16.0, 0: 0.5}
"""One latent cell in pipeline coordinates: 16 px along x; 0.5 s (4 frames at 8 fps) along t."""


def _turn_per_cell(transformer: torch.nn.Module, axis: int) -> torch.Tensor:
    """Phase each rotary pair turns per latent cell along ``axis`` (2: x, 0: t), unwrapped: measured
    over a hundredth of a cell, where no frequency here turns past pi, and scaled up."""
    coords = torch.zeros(1, 3, 2)
    coords[0, axis, 1] = CELL[axis] / 100
    cos, sin = transformer.rope(torch.zeros(1, 2, 1), video_coords=coords)
    angle = torch.atan2(sin[0], cos[0])
    return ((angle[1] - angle[0] + math.pi) % (2 * math.pi) - math.pi).abs()[::2] * 100  # one value per pair


@pytest.mark.parametrize("axis", [2, 0])
def test_grid_rope_gives_every_head_a_band_it_can_use(axis: int) -> None:
    """Stock LTX frequencies on this grid leave whole heads position-blind (under 0.1 rad a cell) or
    aliased (over pi a cell); under ``grid`` every pair of every head turns between the two."""
    pairs_per_head = make_transformer(1).rope.dim // TRANSFORMER_HEADS // 2

    def usable_heads(rope) -> list[bool]:
        turn = _turn_per_cell(make_transformer(1, rope), axis)
        moving = turn > 1e-6  # pairs of the other axes (and the padding) do not turn along this one
        return [bool(((t[m] > 0.1) & (t[m] < math.pi)).all())
                for t, m in zip(turn.split(pairs_per_head), moving.split(pairs_per_head), strict=True)]

    assert usable_heads(ROPES["grid"]) == [True] * TRANSFORMER_HEADS
    assert usable_heads(ROPES["stock"]).count(True) <= 1


def test_rope_settings_reach_the_forward_pass_and_are_checked() -> None:
    torch.manual_seed(0)
    stock, tuned = make_transformer(1), make_transformer(1)
    tuned.load_state_dict(stock.state_dict())
    tune_rope(tuned, ROPES["grid"])
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randn(1, 2 * 2 * 3, LATENT_CHANNELS, generator=generator)
    text = torch.randn(1, 5, TEXT_DIM, generator=generator)
    with torch.no_grad():
        for module in (stock, tuned):
            for param in module.parameters():
                param.copy_(0.05 * torch.randn(param.shape, generator=torch.Generator().manual_seed(param.numel())))
        out = [m(hidden_states=tokens, encoder_hidden_states=text, timestep=torch.full((1, 12), 500.0),
                 encoder_attention_mask=torch.ones(1, 5), video_coords=video_coords(1, 2, 2, 3), return_dict=False)[0]
               for m in (stock, tuned)]
    assert not torch.allclose(out[0], out[1], atol=1e-4)  # same weights, other positions: other output
    with pytest.raises(ValueError, match="unknown rope"):
        tune_rope(tuned, {"thetta": 1.0})
    tune_rope(stock, None)
    assert stock.rope.theta == 10000.0


def test_the_service_refuses_a_checkpoint_with_a_rope_and_the_lab_sets_it_up(tmp_path: Path) -> None:
    """``rope`` in ``dreamreel.json`` marks a lab experiment: the service's backend will not load it (it would
    sample with the stock embedding the model was not trained with); the lab's loader applies it."""
    model_dir = build_tiny_ltx(tmp_path / "tiny", seed=0)
    settings_path = model_dir / "dreamreel.json"
    settings = json.loads(settings_path.read_text())
    stock = LTXConditionBackend(model_dir).pipe.transformer.rope
    assert stock.theta == 10000.0
    assert load_backend(model_dir).pipe.transformer.rope.theta == 10000.0  # no rope: loaded as the service loads it

    settings_path.write_text(json.dumps({**settings, "rope": ROPES["grid"]}))
    with pytest.raises(ValueError, match="rope.*dreamreel-lab eval"):
        LTXConditionBackend(model_dir)
    tuned = load_backend(model_dir).pipe.transformer.rope
    assert {key: getattr(tuned, key) for key in ROPES["grid"]} == ROPES["grid"]

    settings_path.write_text(json.dumps({**settings, "rope": {"thetta": 1.0}}))
    with pytest.raises(ValueError, match="unknown rope"):
        load_backend(model_dir)
