"""Build tiny, random, offline Wan pipelines: one test model per Wan family.

Same idea as :mod:`dreamreel.engine.tiny_model` for LTX-Video: the real diffusers and transformers
classes (``AutoencoderKLWan``, ``WanTransformer3DModel`` / ``WanVACETransformer3DModel``,
``UMT5EncoderModel``, the project's SentencePiece tokenizer, ``FlowMatchEulerDiscreteScheduler`` and, for
the Wan 2.1 image families, ``CLIPVisionModel`` + ``CLIPImageProcessor``) wired into the family's real
pipeline and shrunk until a CPU runs it in well under a second, so each Wan backend's every code path
(load, checkpoint checks, grid, conditioning, progress, cancellation, previews) is exercised without
downloading anything. Its output is noise-like video: the weights are random.

The shapes keep the couplings the pipelines rely on: three VAE downsamples (the pipeline derives the
spatial ratio 8 from ``len(temperal_downsample)`` and the temporal ratio 4 from its ``True`` entries),
spatial patch 2, and per family the transformer's input channels:

* ``wan-t2v``, ``wan-vace``: ``z_dim`` (the noisy latents); VACE adds ``vace_in_channels = 2 * z_dim + 8 * 8``
  (the VAE latents of the kept and of the generated pixels, then the mask folded from 8x8 pixel blocks).
* ``wan-i2v``, ``wan-flf2v``: ``2 * z_dim + 4``: the noisy latents, then ``WanImageToVideoPipeline``'s
  condition: a known-frames mask folded to 4 channels (the VAE's temporal ratio) and the VAE latents of
  ``[image, zeros..., last_image]``.

With an image encoder (Wan 2.1's layout: ``flf2v`` always, ``i2v`` on request), the transformer reads CLIP
features (``image_dim``, with added key/value projections of the hidden width); FLF2V's carries a position
embedding for two images' tokens (``pos_embed_seq_len``), as Wan 2.1 FLF2V does (2 x 257 there).
Without one (``i2v``'s default) it is Wan 2.2 I2V's layout: the latents alone carry the image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.engine.model_dir import SETTINGS_FILE
from dreamreel.engine.registry import BACKENDS
from dreamreel.engine.tiny_model import tiny_vocabulary
from dreamreel.engine.tokenizer import build_tokenizer

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan
    from torch import nn
    from transformers import CLIPImageProcessor, CLIPVisionModel, CLIPVisionModelWithProjection, UMT5EncoderModel

FAMILIES = tuple(family for family in BACKENDS if family.startswith("wan-"))
"""Wan families a tiny model can be built for (every Wan family with a backend); ``family`` in its
``dreamreel.json`` names one."""

MAX_SEQUENCE_LENGTH = 128
"""Prompt tokens the text encoder reads (real Wan reads 512; tiny prompts are far shorter)."""

TINY_SETTINGS: dict[str, object] = {
    "short_side": 32,
    "fps": 16,
    "max_frames": 33,
    "num_inference_steps": 4,
    "guidance_scale": 1.0,
    "max_sequence_length": MAX_SEQUENCE_LENGTH,
}
"""Native defaults of every tiny Wan model (``dreamreel.json`` adds the family). Guidance 1.0 skips the
unconditional pass (CFG is off); 32 px and at most 33 frames keep a generate (VAE encodes, the denoising
loop and a decode) near a second."""

Z_DIM = 16
"""VAE latent channels (as in Wan 2.1), so the stock ``latents_mean``/``latents_std`` (16 each) apply."""
TEXT_DIM = 32
"""UMT5 ``d_model``; the transformer's ``text_dim`` must equal it."""
VAE_SPATIAL = 8
"""Spatial ratio of the VAE; VACE folds each 8x8 block of the mask into channels."""
VAE_TEMPORAL = 4
"""Temporal ratio of the VAE; image-to-video folds its per-frame mask into this many channels."""
HEADS, HEAD_DIM = 2, 16
"""Attention heads and their width: the transformer's hidden width is 32."""

CLIP_DIM = 32
"""Hidden width of the tiny CLIP vision tower (Wan 2.1's ViT-H/14 has 1280); the transformer's ``image_dim``."""
CLIP_IMAGE_SIZE, CLIP_PATCH = 32, 8
CLIP_TOKENS = (CLIP_IMAGE_SIZE // CLIP_PATCH) ** 2 + 1
"""Tokens per embedded image: patches plus the class token (Wan 2.1: 16 x 16 + 1 = 257)."""

FLOW_SHIFT = 3.0
"""Timestep shift of the flow-matching schedule: Wan's value for 480p."""


def tiny_umt5_encoder(vocab_size: int) -> UMT5EncoderModel:
    """A two-layer UMT5 encoder of width :data:`TEXT_DIM` (weights from the current RNG): the tiny stand-in for
    Wan's umt5-xxl, shared with the models built from real configs (``tiny_real``)."""
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(
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


def _vae() -> AutoencoderKLWan:
    """Wan 2.1's VAE layout (three spatial downsamples, the last two also temporal) at a tiny width."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=8,
        z_dim=Z_DIM,
        dim_mult=[1, 1, 2, 2],
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
    )


def _transformer(family: str, image_encoder: bool) -> nn.Module:
    from diffusers import WanTransformer3DModel, WanVACETransformer3DModel

    shape: dict[str, Any] = dict(
        patch_size=(1, 2, 2),
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=Z_DIM,
        out_channels=Z_DIM,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=64,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64,
    )
    if family == "wan-vace":
        return WanVACETransformer3DModel(
            **shape,
            vace_layers=[0],  # a subset, as in the real model (which injects every fifth layer)
            vace_in_channels=2 * Z_DIM + VAE_SPATIAL * VAE_SPATIAL,
        )
    if family in ("wan-i2v", "wan-flf2v"):
        shape["in_channels"] = 2 * Z_DIM + VAE_TEMPORAL
    if image_encoder:
        shape.update(image_dim=CLIP_DIM, added_kv_proj_dim=HEADS * HEAD_DIM)
        if family == "wan-flf2v":
            shape["pos_embed_seq_len"] = 2 * CLIP_TOKENS
    return WanTransformer3DModel(**shape)


def tiny_clip_image_encoder(
    with_projection: bool = False,
) -> tuple[CLIPVisionModel | CLIPVisionModelWithProjection, CLIPImageProcessor]:
    """A two-layer CLIP vision tower (the pipeline reads its penultimate hidden states) and its processor.

    ``with_projection``: the tower as ``CLIPVisionModelWithProjection``, the class some Wan 2.1 image-to-video
    exports name (the pipeline reads the same hidden states from either)."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(hidden_size=CLIP_DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=CLIP_IMAGE_SIZE, patch_size=CLIP_PATCH, projection_dim=CLIP_DIM)
    model = (CLIPVisionModelWithProjection if with_projection else CLIPVisionModel)(config)
    size = {"height": CLIP_IMAGE_SIZE, "width": CLIP_IMAGE_SIZE}
    return model, CLIPImageProcessor(size={"shortest_edge": CLIP_IMAGE_SIZE}, crop_size=size)


def build_tiny_wan(out_dir: str | Path, family: str = "wan-vace", seed: int = 0,
                   image_encoder: bool | None = None) -> Path:
    """Build the tiny random pipeline of ``family`` (one of :data:`FAMILIES`) into ``out_dir``; return it.

    The directory loads offline with the family's pipeline class (``WanPipeline``,
    ``WanImageToVideoPipeline`` or ``WanVACEPipeline``) and holds a ``dreamreel.json`` naming the family
    with the model's native defaults. ``image_encoder`` (image families only) adds Wan 2.1's CLIP image
    conditioning; default: on for ``wan-flf2v`` (Wan 2.1 FLF2V has it), off for ``wan-i2v`` (Wan 2.2's
    layout). Same arguments, same weights; the tokenizer is the tiny LTX model's, identical for every seed.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanPipeline, WanVACEPipeline

    if family not in FAMILIES:
        raise ValueError(f"no tiny Wan model for family {family!r}; known: {', '.join(FAMILIES)}")
    images = family in ("wan-i2v", "wan-flf2v")
    if image_encoder is None:
        image_encoder = family == "wan-flf2v"
    if image_encoder and not images:
        raise ValueError(f"{family} takes no image encoder (only wan-i2v and wan-flf2v do)")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model_proto = tiny_vocabulary()
    tokenizer = build_tokenizer(model_proto, MAX_SEQUENCE_LENGTH)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder, vae = tiny_umt5_encoder(len(tokenizer)), _vae()
        transformer = _transformer(family, image_encoder)
        clip, processor = tiny_clip_image_encoder() if image_encoder else (None, None)

    # The Wan pipelines call ``set_timesteps(steps)`` with no ``mu``: dynamic shifting must be off.
    components: dict[str, Any] = dict(
        tokenizer=tokenizer,
        text_encoder=text_encoder.eval(),
        vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT, use_dynamic_shifting=False),
        transformer=transformer.eval(),
    )
    if family == "wan-vace":
        pipe = WanVACEPipeline(**components)
    elif images:
        pipe = WanImageToVideoPipeline(**components, image_encoder=clip and clip.eval(), image_processor=processor)
    else:
        pipe = WanPipeline(**components)
    pipe.save_pretrained(out, safe_serialization=True)
    # Kept beside tokenizer.json (which is what loads) so the vocabulary's source model ships too.
    (out / "tokenizer" / "spiece.model").write_bytes(model_proto)
    # Written last: its presence marks a complete build.
    (out / SETTINGS_FILE).write_text(json.dumps({"family": family, **TINY_SETTINGS}, indent=2) + "\n")
    return out
