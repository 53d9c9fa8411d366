"""Stage 1: train the small LTX-Video autoencoder on world clips.

Loss: L1 on pixels with object pixels weighted up, plus an unweighted L1 on spatial gradients.
Training sees random square crops of world clips: the autoencoder is convolutional, so it learns
the same maps from a third of the pixels at ~2.7x less cost per step, and evaluation still
reconstructs whole frames. The decoder sees the posterior *mean*
plus a little fixed noise rather than a posterior sample: with the LTX encoder's initial
log-variance of 0 the sample's unit noise swamps the signal and the decoder learned to ignore the
latent (measured: a flat, mean-colour output after 900 steps). A small L2 penalty keeps the latent
scale bounded instead of the KL term. After training, per-channel latent mean/std are measured and
stored in the VAE's own ``latents_mean``/``latents_std`` buffers, which the LTX pipelines use to
(de)normalise latents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dreamreel_lab.training.architecture import make_vae
from dreamreel_lab.training.autoencoder import (
    autoencoder_run,
    batch_psnr,
    gradient_l1,
    lr_at,
    training_clips,
    weighted_l1,
)
from dreamreel_lab.training.checkpoint import StageLog, StageRun
from dreamreel_lab.training.precision import use_bf16
from dreamreel_lab.training.vae_eval import evaluate_vae, passes
from dreamreel_lab.world.spec import Allowed


@dataclass(frozen=True)
class VAEConfig:
    steps: int = 9000
    """The shipped VAE's count (0.65 h in float32 on 64 x 64 crops). Its colour came only after the loss
    left a ~16 dB plateau, at ~3,500 steps in that run (between 1,000 and 2,000 in an earlier one), so a
    run shorter than ~6,000 steps says nothing about the recipe."""
    batch_size: int = 4
    frames: int = 9
    """Training clips are shorter than generated ones: convolutions do not care, and 9 frames (3 latent
    frames) cost ~4x less than 41."""
    crop: int | None = 64
    """Side of the random square crop each step trains on (None: whole frames). Measured on an AVX2 CPU,
    float32, 2 threads, batch 4 x 9 frames: 160x96 0.67 s a step, 64x64 0.25 s."""
    lr: float = 1e-4
    """Measured (200 steps on fresh batches, 4 x 9 frames 160x96): 5e-4 stalls at 11.9 dB, 2e-4 reaches
    15.1 dB, 1e-4 15.6 dB; on one repeated batch 1e-3 stalls at 15.6 dB while 2e-4 reaches 22.4 dB."""
    warmup: int = 100
    latent_noise: float = 0.05
    """Noise added to the latent mean before decoding, so the decoder tolerates imperfect latents."""
    latent_l2: float = 1e-4
    grad_weight: float = 0.5
    object_weight: float = 10.0
    """Extra L1 weight on object pixels (mask dilated by 2 px). Objects cover ~3 % of the pixels; without
    it the VAE drew backgrounds only for 2,000 steps (colour and shape read off 0 % of its
    reconstructions). With 10, objects carry about a third of the L1 loss."""
    ema_decay: float = 0.999
    bf16: bool | None = None
    """Autocast the VAE to bfloat16 (the loss stays fp32); None decides by measurement
    (``training/precision.py``): 2.0x faster on a CPU with bf16 kernels (0.70 -> 0.34 s, one thread,
    4 x 9 x 96 x 160), 20x slower on an AVX2-only one."""
    seed: int = 1
    checkpoint_every: int = 100
    log_every: int = 25
    eval_every: int = 1000
    """Held-out check of the EMA weights against the pass mark (``training/vae_eval.py``), ~20 s each."""
    eval_clips: int = 12


def train_vae(
    work_dir: Path, config: VAEConfig, *, allowed: Allowed | None = None, max_hours: float | None = None
) -> Path:
    """Train (or resume) until ``config.steps`` or ``max_hours`` of this call; returns the checkpoint path."""
    vae = make_vae()
    run = autoencoder_run(work_dir / "vae.pt", StageLog(work_dir, "vae"), vae, config)
    bf16 = use_bf16(config.bf16)
    while run.step < config.steps and not run.out_of_time(max_hours):
        step = run.step
        video, weight = training_clips(config, step, allowed)
        run.set_lr(lr_at(step, config))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            latent = vae.encode(video).latent_dist.mode()
            recon = vae.decode(latent + config.latent_noise * torch.randn_like(latent)).sample
        latent, recon = latent.float(), recon.float()
        l1 = weighted_l1(recon, video, weight)
        grad = gradient_l1(recon, video)
        l2 = latent.pow(2).mean()
        loss = l1 + config.grad_weight * grad + config.latent_l2 * l2
        run.learn(loss)
        if run.step % config.log_every == 0:
            run.log.write(step=run.step, loss=round(loss.item(), 5), l1=round(l1.item(), 5),
                          latent_rms=round(l2.item() ** 0.5, 3), psnr=round(batch_psnr(recon, video), 2),
                          lr=lr_at(step, config), hours=round(run.hours, 3))
        if run.step % config.checkpoint_every == 0:
            run.save()
        if run.step % config.eval_every == 0 or run.step == config.steps:
            _log_eval(run, config, allowed)
    run.save()
    return run.path


def _log_eval(run: StageRun, config: VAEConfig, allowed: Allowed | None) -> None:
    ema_vae = make_vae()
    run.ema.copy_to(ema_vae)
    result = evaluate_vae(ema_vae.eval(), clips=config.eval_clips, allowed=allowed)
    run.log.write(step=run.step, eval=result, passes=passes(result))
