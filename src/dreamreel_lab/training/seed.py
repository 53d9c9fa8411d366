"""Seed a training work directory from a shipped model, so training continues instead of restarting.

Training checkpoints live in an ignored folder and do not survive a lost machine; the shipped model
(``models/embedded``) does. Its VAE, latent statistics, tokenizer, transformer and text encoder are
everything the later stages need: the VAE stage resumes at the shipped VAE's step count (finished, if
the shipped VAE ran the full recipe; its Adam moments start afresh), the latent cache is rebuilt from
the shipped VAE, and the flow stage resumes from the shipped (EMA) weights with a fresh optimizer
(Adam's moments re-estimate within a few hundred steps; the learning-rate schedule continues from the
shipped step count).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
from transformers import T5EncoderModel

from dreamreel.engine.model_dir import SETTINGS_FILE
from dreamreel_lab.training.autoencoder import DECODER_CHECKPOINT
from dreamreel_lab.training.checkpoint import save_checkpoint
from dreamreel_lab.training.flow_stage import ROPE_FILE
from dreamreel_lab.training.vae_stage import VAEConfig


def seed_from_model(model_dir: Path, work_dir: Path) -> list[str]:
    """Write the checkpoints a shipped model implies; never overwrite one that exists. Returns what was written."""
    model_dir, written = Path(model_dir), []
    settings = json.loads((model_dir / SETTINGS_FILE).read_text())
    work_dir.mkdir(parents=True, exist_ok=True)

    spiece = work_dir / "spiece.model"
    if not spiece.exists():
        spiece.write_bytes((model_dir / "tokenizer" / "spiece.model").read_bytes())
        written.append(spiece.name)

    vae_path, stats_path = work_dir / "vae.pt", work_dir / "latents" / "stats.pt"
    vae_steps = int(settings.get("vae_steps", VAEConfig().steps))
    if not (vae_path.is_file() and stats_path.is_file()):
        vae = AutoencoderKLLTXVideo.from_pretrained(model_dir / "vae")
        if not vae_path.is_file():
            weights = vae.state_dict()
            save_checkpoint(vae_path, {"model": weights, "ema": weights, "optimizer": None,
                                       "step": vae_steps,
                                       "hours": float(settings.get("vae_hours", 0.0)), "seeded_from": str(model_dir)})
            written.append("vae.pt")
        if not stats_path.is_file():
            save_checkpoint(stats_path, {"mean": vae.latents_mean.clone(), "std": vae.latents_std.clone(),
                                         "vae_step": vae_steps})
            written.append("latents/stats.pt")

    decoder_steps = int(settings.get("decoder_steps", 0))
    if decoder_steps and not (work_dir / DECODER_CHECKPOINT).is_file():
        decoder = AutoencoderKLLTXVideo.from_pretrained(model_dir / "vae").decoder
        weights = decoder.state_dict()
        save_checkpoint(work_dir / DECODER_CHECKPOINT, {
            "model": weights, "ema": {k: v.clone() for k, v in weights.items()}, "optimizer": None,
            "step": decoder_steps, "hours": float(settings.get("decoder_hours", 0.0)), "seeded_from": str(model_dir),
        })
        written.append(DECODER_CHECKPOINT)

    if not (work_dir / "flow.pt").is_file():
        modules = torch.nn.ModuleDict({
            "transformer": LTXVideoTransformer3DModel.from_pretrained(model_dir / "transformer"),
            "text_encoder": T5EncoderModel.from_pretrained(model_dir / "text_encoder"),
        })
        weights = {k: v.float() for k, v in modules.state_dict().items()}
        save_checkpoint(work_dir / "flow.pt", {
            "model": weights, "ema": {k: v.clone() for k, v in weights.items()},
            "optimizer": None, "step": int(settings["trained_steps"]),
            "hours": float(settings.get("flow_hours", 0.0)), "seeded_from": str(model_dir),
        })
        written.append("flow.pt")
    if settings.get("rope") and not (work_dir / ROPE_FILE).is_file():
        (work_dir / ROPE_FILE).write_text(json.dumps({"name": "seeded", "rope": settings["rope"]}) + "\n")
        written.append(ROPE_FILE)
    return written
