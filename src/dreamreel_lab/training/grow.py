"""Deepen a trained transformer without forgetting it: new blocks start as exact identities.

Why: the embedded flow model (128 wide, 4 blocks) draws the asked-for colour and background but
often splits one object into several blobs (in its samples), a sign of too little capacity for
global structure ("one object, here"). Training a deeper model from nothing costs more flow steps
than a session affords; growing the trained one keeps every step already paid for. Each LTX block
adds three residual branches (self-attention, cross-attention, feed-forward) to its input, so a
block whose three output projections are zero passes its input through unchanged: inserted between
trained blocks, it leaves the model's function exactly as it was, and training then grows it. The
new block copies the weights of the trained block before it (so its inner projections start from
features that mean something) with only those output projections zeroed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

BLOCKS = "transformer_blocks"
RESIDUAL_OUTPUTS = ("attn1.to_out.0.", "attn2.to_out.0.", "ff.net.2.")
"""Parameter-name stems of the three layers whose outputs each block adds to its input."""


def block_count(weights: Mapping[str, torch.Tensor], prefix: str = "") -> int:
    """How many transformer blocks ``weights`` (a state dict, keys optionally under ``prefix``) hold."""
    pattern = re.compile(re.escape(f"{prefix}{BLOCKS}.") + r"(\d+)\.")
    found = {int(match.group(1)) for key in weights if (match := pattern.match(key))}
    return max(found) + 1 if found else 0


def deepen(weights: Mapping[str, torch.Tensor], layers: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """``weights`` with ``layers`` blocks: the trained ones spread evenly, identity blocks between them.

    Trained block ``i`` of ``n`` moves to position ``i * layers // n``; every other position gets
    a copy of the nearest trained block before it, its residual outputs zeroed. Non-block weights
    are kept as they are."""
    old = block_count(weights, prefix)
    if old == 0:
        raise ValueError(f"no {BLOCKS} under prefix {prefix!r}")
    if layers < old:
        raise ValueError(f"cannot deepen {old} blocks to {layers}")
    head = f"{prefix}{BLOCKS}."
    out = {key: value for key, value in weights.items() if not key.startswith(head)}
    placed = {i * layers // old: i for i in range(old)}
    source = 0
    for position in range(layers):
        is_new = position not in placed
        source = source if is_new else placed[position]
        stem = f"{head}{source}."
        for key, value in weights.items():
            if not key.startswith(stem):
                continue
            name = key[len(stem):]
            zeroed = is_new and name.startswith(RESIDUAL_OUTPUTS)
            out[f"{head}{position}.{name}"] = torch.zeros_like(value) if zeroed else value.clone()
    return out
