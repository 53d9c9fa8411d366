"""Stage 1b: go on training the VAE's *decoder* alone, with the encoder frozen.

Why a separate stage: the latent cache and the flow model are both built on the encoder's latent
space. Training the whole VAE again would move that space and throw away the cache (0.3 h) and
every flow step since. The decoder alone can keep improving how latents are drawn (sharper edges,
more readable shapes) while every latent, cached or generated, keeps its meaning, so a better
decoder drops straight into an already-trained model.

The checkpoint is ``<work_dir>/decoder.pt`` (decoder weights only); ``autoencoder.load_trained_vae``
overlays its EMA weights on the stage-1 VAE when it exists. The loss is stage 1's (object-weighted
L1 plus L1 on spatial gradients) with its own weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from dreamreel_lab.training.autoencoder import (
    DECODER_CHECKPOINT,
    autoencoder_run,
    batch_psnr,
    gradient_l1,
    load_stage1_vae,
    lr_at,
    training_clips,
    weighted_l1,
)
from dreamreel_lab.training.checkpoint import StageLog, StageRun
from dreamreel_lab.training.precision import use_bf16
from dreamreel_lab.training.vae_eval import evaluate_vae, passes
from dreamreel_lab.world.spec import Allowed


@dataclass(frozen=True)
class DecoderConfig:
    steps: int = 6000
    batch_size: int = 4
    frames: int = 9
    crop: int | None = 64
    lr: float = 1e-4
    """Stage 1's peak: its measurements put the LTX VAE's stable range at 1e-4 to 2e-4."""
    warmup: int = 100
    latent_noise: float = 0.05
    grad_weight: float = 1.0
    """Twice stage 1's 0.5: the decoder's remaining fault is blur (rings and squares come out as
    balls), and this term is the one that pays for edges."""
    object_weight: float = 10.0
    ema_decay: float = 0.999
    bf16: bool | None = None
    seed: int = 5
    checkpoint_every: int = 100
    log_every: int = 25
    eval_every: int = 1000
    eval_clips: int = 12


def train_decoder(work_dir: Path, config: DecoderConfig, *, allowed: Allowed | None = None,
                  max_hours: float | None = None) -> Path:
    """Train (or resume) the decoder until ``config.steps`` or ``max_hours``; returns the checkpoint path."""
    vae = load_stage1_vae(work_dir)
    vae.encoder.requires_grad_(False)
    decoder = vae.decoder
    run = autoencoder_run(work_dir / DECODER_CHECKPOINT, StageLog(work_dir, "decoder"), decoder, config)
    bf16 = use_bf16(config.bf16)
    while run.step < config.steps and not run.out_of_time(max_hours):
        step = run.step
        video, weight = training_clips(config, step, allowed)
        run.set_lr(lr_at(step, config))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                latent = vae.encode(video).latent_dist.mode()
            recon = vae.decode(latent + config.latent_noise * torch.randn_like(latent)).sample
        recon = recon.float()
        l1 = weighted_l1(recon, video, weight)
        loss = l1 + config.grad_weight * gradient_l1(recon, video)
        run.learn(loss)
        if run.step % config.log_every == 0:
            run.log.write(step=run.step, loss=round(loss.item(), 5), l1=round(l1.item(), 5),
                          psnr=round(batch_psnr(recon, video), 2), lr=lr_at(step, config),
                          hours=round(run.hours, 3))
        if run.step % config.checkpoint_every == 0:
            run.save()
        if run.step % config.eval_every == 0:
            _log_eval(run, vae, config, allowed)
    run.save()
    return run.path


def _log_eval(run: StageRun, vae, config: DecoderConfig, allowed: Allowed | None) -> None:
    """The EMA decoder on the frozen encoder, against stage 1's pass mark."""
    ema_vae = copy.deepcopy(vae)
    run.ema.copy_to(ema_vae.decoder)
    result = evaluate_vae(ema_vae.eval(), clips=config.eval_clips, allowed=allowed)
    run.log.write(step=run.step, eval=result, passes=passes(result))
