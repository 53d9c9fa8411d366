"""Batches of world clips for training: one aspect ratio per batch (a shape bucket), seeded per step.

Every batch is a pure function of (seed, step), so a resumed run sees exactly the data it would
have seen, without saving any RNG state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamreel.core.request import AspectRatio
from dreamreel_lab.training.architecture import NATIVE, native_size
from dreamreel_lab.world.draw import draw_scene, draw_scene_and_mask
from dreamreel_lab.world.spec import Allowed, Scene, sample_scene

ASPECTS = tuple(AspectRatio)


@dataclass(frozen=True)
class Batch:
    frames: np.ndarray
    """uint8 (B, F, H, W, 3)."""
    captions: list[str]
    scenes: list[Scene]
    aspect: AspectRatio
    masks: np.ndarray | None = None
    """bool (B, F, H, W): where objects are drawn (only when asked for)."""


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, step, stream])


def draw_batch(
    seed: int, step: int, batch_size: int, *, allowed: Allowed | None = None, frames: int = NATIVE.frames,
    aspect: AspectRatio | None = None, with_captions: bool = True, with_masks: bool = False,
) -> Batch:
    rng = step_rng(seed, step)
    aspect = aspect or ASPECTS[int(rng.integers(len(ASPECTS)))]
    width, height = native_size(aspect)
    scenes = [sample_scene(rng, allowed=allowed) for _ in range(batch_size)]
    masks = None
    if with_masks:
        rendered = [draw_scene_and_mask(scene, width, height, frames, fps=NATIVE.fps) for scene in scenes]
        clips, masks = np.stack([clip for clip, _ in rendered]), np.stack([mask for _, mask in rendered])
    else:
        clips = np.stack([draw_scene(scene, width, height, frames, fps=NATIVE.fps) for scene in scenes])
    captions: list[str] = []
    if with_captions:
        from dreamreel_lab.world.captions import caption

        captions = [caption(scene, rng) for scene in scenes]
    return Batch(frames=clips, captions=captions, scenes=scenes, aspect=aspect, masks=masks)


def to_video_tensor(frames: np.ndarray):
    """uint8 (B, F, H, W, 3) -> float (B, 3, F, H, W) in [-1, 1], the VAE's input convention."""
    import torch

    return torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)
