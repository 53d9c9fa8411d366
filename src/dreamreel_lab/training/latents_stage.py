"""Stage 2: encode a fixed cache of world clips with the trained VAE (the flow stage's dataset).

Encoding a 41-frame clip costs about as much as a transformer training step on it, so clips are
encoded once and reused across epochs. Shards hold one aspect ratio each (a shape bucket), the
normalised latents of the clip, the latent of its last frame encoded alone (what the condition
pipeline appends as extra tokens for an end keyframe), the latent of its last ``TAIL_FRAMES`` frames
encoded alone (what it appends for a clip placed at the end: reverse-extend), captions, scene
descriptions and, per latent cell, whether an object covers any of its pixels (the flow loss weights those cells up).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dreamreel_lab.training.architecture import SPATIAL_RATIO, TEMPORAL_RATIO
from dreamreel_lab.training.autoencoder import load_trained_vae
from dreamreel_lab.training.checkpoint import StageLog, load_checkpoint, save_checkpoint
from dreamreel_lab.training.data import ASPECTS, draw_batch, step_rng, to_video_tensor
from dreamreel_lab.training.precision import use_bf16
from dreamreel_lab.world.captions import caption
from dreamreel_lab.world.spec import Allowed

TAIL_FRAMES = TEMPORAL_RATIO + 1
"""Frames of a reverse-extend condition: the planner's ``overlap_frames`` (two latent frames, the
fewest the pipeline accepts for a clip placed after index 0). Encoded alone, its first latent frame
is a single picture, unlike the same frames' latents inside the whole clip."""

CAPTIONS_PER_CLIP = 4
"""Each clip keeps several phrasings of its caption, so the text encoder sees paraphrases."""


@dataclass(frozen=True)
class LatentsConfig:
    shards: int = 350
    clips_per_shard: int = 64
    encode_batch: int = 8
    stats_clips: int = 256
    seed: int = 2
    bf16: bool | None = None
    """Encode under bfloat16 autocast where it is faster (``training/precision.py``); latents are
    stored as fp16 anyway."""


def latent_object_mask(masks) -> torch.Tensor:
    """bool (B, F, H, W) pixel object masks -> bool (B, F', H', W') on the latent grid.

    A latent cell is an object cell if any pixel it encodes is: latent frame 0 is frame 0 alone and
    latent frame k covers frames 4k-3..4k (the VAE is causal in time), 16 x 16 pixels per cell."""
    mask = torch.from_numpy(masks).float().unsqueeze(1)  # (B, 1, F, H, W)
    first, rest = mask[:, :, :1], mask[:, :, 1:]
    batch, _, frames, height, width = rest.shape
    rest = rest.reshape(batch, 1, frames // TEMPORAL_RATIO, TEMPORAL_RATIO, height, width).amax(dim=3)
    grouped = torch.cat([first, rest], dim=2)
    pooled = torch.nn.functional.max_pool3d(grouped, kernel_size=(1, SPATIAL_RATIO, SPATIAL_RATIO))
    return pooled[:, 0].bool()


def _normalise(latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)


@torch.no_grad()
def measure_latent_stats(vae, config: LatentsConfig, allowed: Allowed | None,
                         bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of raw latents over a sample of clips (stored in the VAE's buffers)."""
    chunks = []
    for i in range(config.stats_clips // config.encode_batch):
        batch = draw_batch(config.seed + 7, i, config.encode_batch, allowed=allowed, with_captions=False)
        chunks.append(_encode(vae, to_video_tensor(batch.frames), bf16).transpose(0, 1).flatten(1))
    flat = torch.cat(chunks, dim=1)
    return flat.mean(dim=1), flat.std(dim=1).clamp(min=1e-3)


@torch.no_grad()
def build_latent_cache(work_dir: Path, config: LatentsConfig, *, allowed: Allowed | None,
                       max_hours: float | None = None) -> Path:
    cache = work_dir / "latents"
    cache.mkdir(parents=True, exist_ok=True)
    log = StageLog(work_dir, "latents")
    vae_state = load_checkpoint(work_dir / "vae.pt")
    vae = load_trained_vae(work_dir, state=vae_state)
    return _build(vae, vae_state["step"], cache, log, config, allowed, max_hours)


def _encode(vae, video: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return vae.encode(video).latent_dist.mode().float()


def _build(vae, vae_step: int, cache: Path, log: StageLog, config: LatentsConfig, allowed: Allowed | None,
           max_hours: float | None) -> Path:
    bf16 = use_bf16(config.bf16)
    stats_path = cache / "stats.pt"
    stats = load_checkpoint(stats_path)
    if stats is not None and stats.get("vae_step", vae_step) != vae_step:
        # Latents of a VAE that has trained on since are in another space; mixing them would be silent.
        raise RuntimeError(f"{cache} was encoded by the VAE at step {stats['vae_step']}, the VAE is now at "
                           f"step {vae_step}: delete {cache} and run the latents stage again")
    if stats is None:
        mean, std = measure_latent_stats(vae, config, allowed, bf16)
        stats = {"mean": mean, "std": std, "vae_step": vae_step}
        save_checkpoint(stats_path, stats)
    mean, std = stats["mean"], stats["std"]
    started = time.monotonic()
    for shard in range(config.shards):
        path = cache / f"shard-{shard:05d}.pt"
        if path.exists():
            continue
        if max_hours is not None and (time.monotonic() - started) / 3600 >= max_hours:
            break
        aspect = ASPECTS[shard % len(ASPECTS)]
        latents, last, tail, objects, captions, scenes = [], [], [], [], [], []
        for part in range(config.clips_per_shard // config.encode_batch):
            step = shard * 1000 + part
            batch = draw_batch(config.seed, step, config.encode_batch, allowed=allowed, aspect=aspect,
                               with_captions=False, with_masks=True)
            video = to_video_tensor(batch.frames)
            objects.append(latent_object_mask(batch.masks))
            latents.append(_normalise(_encode(vae, video, bf16), mean, std).half())
            last.append(_normalise(_encode(vae, video[:, :, -1:], bf16), mean, std).half())
            tail.append(_normalise(_encode(vae, video[:, :, -TAIL_FRAMES:], bf16), mean, std).half())
            rng = step_rng(config.seed, step, stream=1)
            captions += [[caption(scene, rng) for _ in range(CAPTIONS_PER_CLIP)] for scene in batch.scenes]
            scenes += [scene.to_dict() for scene in batch.scenes]
        save_checkpoint(path, {"aspect": aspect.value, "latents": torch.cat(latents), "last": torch.cat(last),
                               "tail": torch.cat(tail), "objects": torch.cat(objects), "captions": captions,
                               "scenes": scenes})
        log.write(shard=shard, aspect=aspect.value, hours=round((time.monotonic() - started) / 3600, 3))
    return cache
