"""Stage 2: encode a fixed cache of world clips with the trained VAE (the flow stage's dataset).

Encoding a 41-frame clip costs about as much as a transformer training step on it, so clips are
encoded once and reused across epochs. Shards hold one aspect ratio each (a shape bucket), the
normalised latents of the clip, the latent of its last frame encoded alone (what the condition
pipeline appends as extra tokens for an end keyframe), captions and scene descriptions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dreamreel.training.checkpoint import StageLog, load_checkpoint, save_checkpoint
from dreamreel.training.data import ASPECTS, draw_batch, step_rng, to_video_tensor
from dreamreel.training.vae_stage import load_trained_vae
from dreamreel.world.captions import caption
from dreamreel.world.spec import Allowed

CAPTIONS_PER_CLIP = 4
"""Each clip keeps several phrasings of its caption, so the text encoder sees paraphrases."""


@dataclass(frozen=True)
class LatentsConfig:
    shards: int = 350
    clips_per_shard: int = 64
    encode_batch: int = 8
    stats_clips: int = 256
    seed: int = 2
    bf16: bool = True
    """Encode under bfloat16 autocast (2x faster on this CPU); latents are stored as fp16 anyway."""


def _normalise(latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)


@torch.no_grad()
def measure_latent_stats(vae, config: LatentsConfig, allowed: Allowed | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of raw latents over a sample of clips (stored in the VAE's buffers)."""
    chunks = []
    for i in range(config.stats_clips // config.encode_batch):
        batch = draw_batch(config.seed + 7, i, config.encode_batch, allowed=allowed, with_captions=False)
        chunks.append(_encode(vae, to_video_tensor(batch.frames), config.bf16).transpose(0, 1).flatten(1))
    flat = torch.cat(chunks, dim=1)
    return flat.mean(dim=1), flat.std(dim=1).clamp(min=1e-3)


@torch.no_grad()
def build_latent_cache(work_dir: Path, config: LatentsConfig, *, allowed: Allowed | None,
                       max_hours: float | None = None) -> Path:
    cache = work_dir / "latents"
    cache.mkdir(parents=True, exist_ok=True)
    log = StageLog(work_dir, "latents")
    vae = load_trained_vae(work_dir)
    return _build(vae, cache, log, config, allowed, max_hours)


def _encode(vae, video: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return vae.encode(video).latent_dist.mode().float()


def _build(vae, cache: Path, log: StageLog, config: LatentsConfig, allowed: Allowed | None,
           max_hours: float | None) -> Path:
    stats_path = cache / "stats.pt"
    stats = load_checkpoint(stats_path)
    if stats is None:
        mean, std = measure_latent_stats(vae, config, allowed)
        stats = {"mean": mean, "std": std}
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
        latents, last, captions, scenes = [], [], [], []
        for part in range(config.clips_per_shard // config.encode_batch):
            step = shard * 1000 + part
            batch = draw_batch(config.seed, step, config.encode_batch, allowed=allowed, aspect=aspect,
                               with_captions=False)
            video = to_video_tensor(batch.frames)
            latents.append(_normalise(_encode(vae, video, config.bf16), mean, std).half())
            last.append(_normalise(_encode(vae, video[:, :, -1:], config.bf16), mean, std).half())
            rng = step_rng(config.seed, step, stream=1)
            captions += [[caption(scene, rng) for _ in range(CAPTIONS_PER_CLIP)] for scene in batch.scenes]
            scenes += [scene.to_dict() for scene in batch.scenes]
        save_checkpoint(path, {"aspect": aspect.value, "latents": torch.cat(latents), "last": torch.cat(last),
                               "captions": captions, "scenes": scenes})
        log.write(shard=shard, aspect=aspect.value, hours=round((time.monotonic() - started) / 3600, 3))
    return cache
