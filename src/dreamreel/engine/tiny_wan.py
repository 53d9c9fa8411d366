"""Build a tiny, random, offline Wan VACE pipeline (the ``wan-vace`` family's test model).

Same idea as :mod:`dreamreel.engine.tiny_model` for LTX-Video: the real diffusers and transformers
classes (``AutoencoderKLWan``, ``WanVACETransformer3DModel``, ``UMT5EncoderModel``, the project's
SentencePiece tokenizer, ``FlowMatchEulerDiscreteScheduler``) wired into a real ``WanVACEPipeline`` and
shrunk until a CPU runs it in about a second, so the ``wan-vace`` backend's every code path (load,
grid, VACE video/mask conditioning, progress, cancellation) is exercised without downloading anything.
Its output is noise-like video: the weights are random.

The shapes keep the couplings the pipeline relies on: three VAE downsamples (the pipeline derives the
spatial ratio 8 from ``len(temperal_downsample)`` and the temporal ratio 4 from its ``True`` entries),
spatial patch 2, and ``vace_in_channels = 2 * z_dim + 8 * 8`` (the VAE latents of the kept and of the
generated pixels, then the mask folded from 8x8 pixel blocks into channels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from dreamreel.engine.registry import SETTINGS_FILE
from dreamreel.engine.tiny_model import tiny_vocabulary
from dreamreel.engine.tokenizer import build_tokenizer

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan, WanVACETransformer3DModel
    from transformers import UMT5EncoderModel

MODEL_FAMILY = "wan-vace"
"""Value of ``family`` in ``dreamreel.json``; matches ``WanVACEBackend.name``."""

MAX_SEQUENCE_LENGTH = 128
"""Prompt tokens the text encoder reads (real Wan reads 512; tiny prompts are far shorter)."""

TINY_SETTINGS: dict[str, object] = {
    "family": MODEL_FAMILY,
    "short_side": 32,
    "fps": 16,
    "max_frames": 33,
    "num_inference_steps": 4,
    "guidance_scale": 1.0,
    "max_sequence_length": MAX_SEQUENCE_LENGTH,
}
"""Native defaults of the tiny model. Guidance 1.0 skips the unconditional pass (CFG is off); 32 px and
at most 33 frames keep a generate (two VAE encodes, the denoising loop and a decode) near a second."""

Z_DIM = 16
"""VAE latent channels (as in Wan 2.1), so the stock ``latents_mean``/``latents_std`` (16 each) apply."""
TEXT_DIM = 32
"""UMT5 ``d_model``; the transformer's ``text_dim`` must equal it."""
VAE_SPATIAL = 8
"""Spatial ratio of the VAE; the pipeline folds each 8x8 block of the mask into channels."""

FLOW_SHIFT = 3.0
"""Timestep shift of the flow-matching schedule: Wan's value for 480p (its published VACE default)."""


def _build_components(vocab_size: int) -> tuple[UMT5EncoderModel, AutoencoderKLWan, WanVACETransformer3DModel]:
    """Instantiate the three torch modules of the pipeline (weights come from the current RNG)."""
    from diffusers import AutoencoderKLWan, WanVACETransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=vocab_size,
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=32,
            feed_forward_proj="gated-gelu",  # as in UMT5, the encoder Wan uses
            dropout_rate=0.0,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            use_cache=False,
        )
    )
    # Wan 2.1's VAE layout (three spatial downsamples, the last two also temporal) at a tiny width.
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=Z_DIM,
        dim_mult=[1, 1, 2, 2],
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
    )
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=Z_DIM,
        out_channels=Z_DIM,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=64,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64,
        vace_layers=[0],  # a subset, as in the real model (which injects every fifth layer)
        vace_in_channels=2 * Z_DIM + VAE_SPATIAL * VAE_SPATIAL,
    )
    return text_encoder, vae, transformer


def build_tiny_wan_vace(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny random ``WanVACEPipeline`` into ``out_dir`` and return that path.

    The directory loads offline with ``WanVACEPipeline.from_pretrained(out_dir)`` and holds a
    ``dreamreel.json`` (family ``wan-vace``) with the model's native defaults. Same ``seed``, same
    weights; the tokenizer is the tiny LTX model's, identical for every seed.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model_proto = tiny_vocabulary()
    tokenizer = build_tokenizer(model_proto, MAX_SEQUENCE_LENGTH)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder, vae, transformer = _build_components(len(tokenizer))

    # ``WanVACEPipeline`` calls ``set_timesteps(steps)`` with no ``mu``: dynamic shifting must be off.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT, use_dynamic_shifting=False)

    pipe = WanVACEPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder.eval(),
        vae=vae.eval(),
        scheduler=scheduler,
        transformer=transformer.eval(),
    )
    pipe.save_pretrained(out, safe_serialization=True)
    # Kept beside tokenizer.json (which is what loads) so the vocabulary's source model ships too.
    (out / "tokenizer" / "spiece.model").write_bytes(model_proto)
    # Written last: its presence marks a complete build.
    (out / SETTINGS_FILE).write_text(json.dumps(TINY_SETTINGS, indent=2) + "\n")
    return out
