"""The worlds training and evaluation draw from, each with the held-out split evaluation prompts come from."""

from __future__ import annotations

from dataclasses import replace

from dreamreel_lab.world.spec import REDUCED_WORLD, Allowed
from dreamreel_lab.world.split import Split
from dreamreel_lab.world.vocab import Camera

TRAINING_SPLIT = Split(axes=("colour", "shape", "motion"))
"""Colour x shape x motion combinations held out of training (every single word is still seen):
evaluation prompts use only held-out combinations, so they test composition, not recall."""


WORLDS: dict[str, Allowed] = {
    "full": Allowed(),
    "reduced": REDUCED_WORLD,
    "static-camera": Allowed(cameras=(Camera.STATIC,)),
}
"""Worlds a training stage (or the eval) can draw from. ``static-camera`` is the full world with the
camera held still: the shipped VAE cannot show a camera move (its reconstructions of panning,
tilting and zooming clips come back with the scenery standing still, ``training/vae_eval.py``), so in its latent
space a camera move only bends the objects' on-screen paths, which teaches the flow model motions
the analyzer (and a viewer) then reads as wrong."""


def world_for(name: str, role: str = "train") -> Allowed:
    """World ``name`` (a key of :data:`WORLDS`) split for ``role``: ``train`` or ``heldout`` combinations."""
    return replace(WORLDS[name], split=TRAINING_SPLIT, role=role)
