"""Stage 4: assemble the trained parts into a diffusers ``LTXConditionPipeline`` directory.

The result loads offline with ``from_pretrained`` like any LTX-Video checkpoint; ``dreamreel.json``
beside it tells the backend the native format and sampler defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import LTXConditionPipeline

from dreamreel.engine.model_dir import SETTINGS_FILE
from dreamreel_lab.training.architecture import (
    CAMERA_MOVES,
    LOOP_ON_IMAGE,
    NATIVE,
    SAMPLER_DEFAULTS,
    TEXT_MAX_TOKENS,
    make_scheduler,
    make_text_encoder,
    make_transformer,
)
from dreamreel_lab.training.autoencoder import DECODER_CHECKPOINT, load_trained_vae, pin_posterior_variance
from dreamreel_lab.training.checkpoint import load_checkpoint, load_weights
from dreamreel_lab.training.flow_stage import trained_rope
from dreamreel_lab.training.grow import block_count
from dreamreel_lab.training.text import load_or_build_tokenizer


def load_flow_state(work_dir: Path) -> dict:
    state = load_checkpoint(work_dir / "flow.pt")
    if state is None:
        raise FileNotFoundError("no flow checkpoint; run the flow stage first")
    return state


def build_pipeline(work_dir: Path, *, use_ema: bool = True, state: dict | None = None,
                   vae_state: dict | None = None) -> LTXConditionPipeline:
    """The trained parts as a pipeline; ``state``/``vae_state`` are the flow/VAE checkpoints if the caller
    already loaded them."""
    tokenizer = load_or_build_tokenizer(work_dir)
    vae = pin_posterior_variance(load_trained_vae(work_dir, state=vae_state))
    stats = load_checkpoint(work_dir / "latents" / "stats.pt")
    if stats is None:
        raise FileNotFoundError("latent statistics missing; run the latents stage first")
    vae.latents_mean.copy_(stats["mean"])
    vae.latents_std.copy_(stats["std"])
    state = state if state is not None else load_flow_state(work_dir)
    weights = state["ema"] if use_ema else state["model"]
    transformer = make_transformer(block_count(weights, prefix="transformer."), trained_rope(work_dir))
    text_encoder = make_text_encoder(len(tokenizer))
    modules = torch.nn.ModuleDict({"transformer": transformer, "text_encoder": text_encoder})
    load_weights(modules, weights)
    pipe = LTXConditionPipeline(scheduler=make_scheduler(), vae=vae.eval(), text_encoder=text_encoder.eval(),
                                tokenizer=tokenizer, transformer=transformer.eval())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_settings(step: int, hours: float, vae_step: int = 0, vae_hours: float = 0.0, decoder_step: int = 0,
                   decoder_hours: float = 0.0, rope: dict[str, float] | None = None) -> dict[str, object]:
    """``dreamreel.json``; ``rope`` only for a model trained with a non-stock position embedding."""
    return {
        "family": "ltx-condition",
        "short_side": NATIVE.short_side,
        "fps": NATIVE.fps,
        "max_frames": NATIVE.frames,
        "max_sequence_length": TEXT_MAX_TOKENS,
        **SAMPLER_DEFAULTS,
        "loop_on_image": LOOP_ON_IMAGE,
        "camera_moves": CAMERA_MOVES,
        "trained_steps": step,
        "flow_hours": round(hours, 3),
        "vae_steps": vae_step,
        "vae_hours": round(vae_hours, 3),
        "decoder_steps": decoder_step,
        "decoder_hours": round(decoder_hours, 3),
        **({"rope": rope} if rope else {}),
    }


def export_pipeline(work_dir: Path, out_dir: Path) -> Path:
    state, vae_state = load_flow_state(work_dir), load_checkpoint(work_dir / "vae.pt")
    pipe = build_pipeline(work_dir, state=state, vae_state=vae_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "tokenizer" / "spiece.model").write_bytes((work_dir / "spiece.model").read_bytes())
    decoder_state = load_checkpoint(work_dir / DECODER_CHECKPOINT) or {"step": 0, "hours": 0.0}
    settings = model_settings(state["step"], state["hours"], vae_state["step"], vae_state["hours"],
                              decoder_state["step"], decoder_state["hours"], trained_rope(work_dir))
    (out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    return out_dir
