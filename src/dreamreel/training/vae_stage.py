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

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from dreamreel.training.architecture import make_vae
from dreamreel.training.checkpoint import StageLog, StageRun, load_checkpoint, load_weights, warmup_cosine
from dreamreel.training.data import draw_batch, step_rng, to_video_tensor
from dreamreel.training.precision import use_bf16
from dreamreel.world.spec import Allowed


@dataclass(frozen=True)
class VAEConfig:
    steps: int = 9000
    """The shipped VAE's count (session 5, 0.65 h in float32 on 64 x 64 crops). Its colour came only after
    the loss left a ~16 dB plateau, at ~3,500 steps in that run (between 1,000 and 2,000 in session
    3), so a run shorter than ~6,000 steps says nothing about the recipe."""
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


def gradient_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between spatial gradients: keeps edges sharp.

    Deliberately unweighted. Session 4 weighted it by the object mask like the pixel term; that run's
    background accuracy on reconstructions fell from 83 % to 25 % at step 2,000 and colour never
    came (8 % at 3,000, against 92 % at 4,000 for session 3's unweighted recipe)."""
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def random_crop(frames, masks, side: int | None, rng):
    """The same random ``side`` x ``side`` window of every clip in a batch (frames (B, F, H, W, C),
    masks (B, F, H, W)); unchanged when ``side`` is None or not smaller than the frame."""
    height, width = frames.shape[2:4]
    if side is None or (side >= height and side >= width):
        return frames, masks
    top = int(rng.integers(height - min(side, height) + 1))
    left = int(rng.integers(width - min(side, width) + 1))
    window = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
    return frames[window], masks[window]


def _dilated(masks) -> torch.Tensor:
    """bool (B, F, H, W) -> float (B, 1, F, H, W), grown by 2 px so object edges count as objects."""
    mask = torch.from_numpy(masks).float().unsqueeze(1)
    return torch.nn.functional.max_pool3d(mask, kernel_size=(1, 5, 5), stride=1, padding=(0, 2, 2))


def training_clips(config, step: int, allowed: Allowed | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``step``'s batch for an autoencoder stage (``config``: a :class:`VAEConfig` or a decoder
    config with the same data fields): video (B, 3, F, H, W) in [-1, 1], and each pixel's L1 weight."""
    torch.manual_seed(config.seed * 1_000_003 + step)
    batch = draw_batch(config.seed, step, config.batch_size, allowed=allowed, frames=config.frames,
                       with_captions=False, with_masks=True)
    frames, masks = random_crop(batch.frames, batch.masks, config.crop, step_rng(config.seed, step, stream=2))
    return to_video_tensor(frames), 1 + config.object_weight * _dilated(masks)


def weighted_l1(recon: torch.Tensor, video: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return ((recon - video).abs() * weight).mean() / weight.mean()


def batch_psnr(recon: torch.Tensor, video: torch.Tensor) -> float:
    """PSNR in dB of a [-1, 1] reconstruction, as if both were in [0, 1]."""
    mse = ((recon.detach().clamp(-1, 1) - video) ** 2).mean().item() / 4
    return 10 * math.log10(1 / max(mse, 1e-10))


def lr_at(step: int, config) -> float:
    """Warm-up then cosine to 10 % (``config``: a :class:`VAEConfig` or a decoder config)."""
    return warmup_cosine(step, peak=config.lr, warmup=config.warmup, total=config.steps, floor=0.1)


def autoencoder_run(path: Path, log: StageLog, module: torch.nn.Module, config) -> StageRun:
    """The resumable run of an autoencoder stage training ``module``: AdamW (no weight decay, betas
    0.9/0.99) at ``config.lr``, EMA at ``config.ema_decay``; ``module`` is left in train mode."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=0.0, betas=(0.9, 0.99))
    run = StageRun(path, log, module, optimizer, config.ema_decay)
    module.train()
    return run


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
    from dreamreel.training.vae_eval import evaluate_vae, passes

    ema_vae = make_vae()
    run.ema.copy_to(ema_vae)
    result = evaluate_vae(ema_vae.eval(), clips=config.eval_clips, allowed=allowed)
    run.log.write(step=run.step, eval=result, passes=passes(result))


def load_stage1_vae(work_dir: Path, *, use_ema: bool = True, state: dict | None = None):
    """The stage-1 VAE alone (EMA weights), in eval mode; ``state`` is ``vae.pt`` if the caller already loaded it."""
    state = state if state is not None else load_checkpoint(work_dir / "vae.pt")
    if state is None:
        raise FileNotFoundError(f"no VAE checkpoint in {work_dir}; run the vae stage first")
    vae = make_vae()
    vae.load_state_dict(state["model"])
    if use_ema:
        load_weights(vae, state["ema"])
    return vae.eval()


def load_trained_vae(work_dir: Path, *, use_ema: bool = True, state: dict | None = None):
    """The VAE as the model ships it: stage 1, with the decoder stage's weights on top if that stage ran.

    The encoder (and so every cached latent) is stage 1's either way."""
    from dreamreel.training.decoder_stage import overlay_trained_decoder

    vae = load_stage1_vae(work_dir, use_ema=use_ema, state=state)
    overlay_trained_decoder(vae, work_dir, use_ema=use_ema)
    return vae.eval()


POSTERIOR_LOG_VARIANCE = -30.0
"""The floor ``DiagonalGaussianDistribution`` clamps log-variance to: a standard deviation of 3e-7."""


def pin_posterior_variance(vae):
    """Make the encoder's posterior a point mass at its mean, so ``latent_dist.sample()`` equals ``.mode()``.

    Why: stage 1 trains on the posterior mean (plus a fixed 0.05 noise), never on the sampled
    posterior, so the encoder's log-variance channel (the last output channel of ``conv_out``, which
    the LTX encoder repeats for every latent channel) keeps its random initial weights and reads about
    0: a standard deviation near 1.1, twice the latents' own spread. ``LTXConditionPipeline`` encodes
    keyframes and leading clips with ``latent_dist.sample()``, so every image condition arrived buried
    in noise the flow never saw in training (session 10: the shipped model's first frame came back at
    15.9 dB of its keyframe while the VAE alone reconstructs it at 22.3 dB). Zeroing that channel's
    weights and setting its bias to the floor changes nothing the training stages read (they all use
    ``.mode()``); it only makes the shipped VAE mean what it was trained to mean."""
    conv = vae.encoder.conv_out.conv
    with torch.no_grad():
        conv.weight[-1].zero_()
        conv.bias[-1].fill_(POSTERIOR_LOG_VARIANCE)
    return vae
