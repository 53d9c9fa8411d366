"""Deepening a trained transformer must not change what it computes until it trains on."""

from __future__ import annotations

import pytest
import torch

from dreamreel_lab.training.architecture import LATENT_CHANNELS, TEXT_DIM, make_transformer
from dreamreel_lab.training.flow_stage import video_coords
from dreamreel_lab.training.grow import block_count, deepen


def _randomised(layers: int) -> torch.nn.Module:
    """A transformer whose every weight is non-zero, so an identity block cannot happen by accident."""
    torch.manual_seed(0)
    model = make_transformer(layers)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def _run(model: torch.nn.Module, grad: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    frames, height, width = 2, 2, 3
    tokens = torch.randn(1, frames * height * width, LATENT_CHANNELS, generator=generator)
    text = torch.randn(1, 5, TEXT_DIM, generator=generator)
    with torch.set_grad_enabled(grad):
        return model(hidden_states=tokens, encoder_hidden_states=text, timestep=torch.full((1, tokens.shape[1]), 500.0),
                     encoder_attention_mask=torch.ones(1, 5), video_coords=video_coords(1, frames, height, width),
                     return_dict=False)[0]


def test_a_deepened_transformer_computes_what_it_did() -> None:
    small = _randomised(2)
    grown_weights = deepen(small.state_dict(), 5)
    assert block_count(small.state_dict()) == 2 and block_count(grown_weights) == 5
    grown = make_transformer(5).eval()
    grown.load_state_dict(grown_weights)  # strict: every parameter of the deeper model is there
    assert torch.allclose(_run(grown), _run(small), atol=1e-5)
    # the trained blocks kept their weights; the new ones are not all zero (only their outputs are)
    assert torch.equal(grown_weights["transformer_blocks.4.attn1.to_q.weight"],
                       small.state_dict()["transformer_blocks.1.attn1.to_q.weight"])
    assert not grown_weights["transformer_blocks.1.attn1.to_q.weight"].eq(0).all()
    assert grown_weights["transformer_blocks.1.ff.net.2.weight"].eq(0).all()
    # and it can learn: one training step moves the output away from the small model's
    optimizer = torch.optim.SGD(grown.parameters(), lr=0.1)
    _run(grown.train(), grad=True).pow(2).mean().backward()
    optimizer.step()
    assert not torch.allclose(_run(grown.eval()), _run(small), atol=1e-5)


def test_deepen_refuses_to_shrink_or_to_guess() -> None:
    weights = make_transformer(3).state_dict()
    with pytest.raises(ValueError, match="cannot deepen 3 blocks to 2"):
        deepen(weights, 2)
    with pytest.raises(ValueError, match="no transformer_blocks"):
        deepen(weights, 4, prefix="transformer.")
