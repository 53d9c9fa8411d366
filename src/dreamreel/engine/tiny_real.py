"""Tiny random checkpoints built from public checkpoints' own configs (``real_configs/<name>.json``).

Why: the hand-made tiny models (:mod:`.tiny_model`, :mod:`.tiny_wan`) keep a checkpoint's architecture but
pick their own shapes, so a bug that only shows with a real checkpoint's shapes (48 latent channels, a VAE
that compresses 16x and patchifies, 32x spatial compression, two experts switched at a boundary, per-token
timesteps) would first show on a GPU with the real weights. These models keep every shape-defining fact of
the real config and shrink only depth and width:

* kept: latent channels (transformer ``in_channels``/``out_channels``, VAE ``z_dim``/``latent_channels``), patch
  sizes (transformer and VAE), the VAE's spatial and temporal compression (its downsampling pattern and its
  declared scale factors), the latents' per-channel statistics where the facts give them, the scheduler
  config, the pipeline class and its ``boundary_ratio`` / ``expand_timesteps``, a second expert
  (``transformer_2``), VACE's ``vace_in_channels``, the number of images an image position embedding holds;
* shrunk: layers (2, VACE's injected layers filtered to them), attention heads and head width (2 x 16), feed
  forward and time-embedding widths, the VAE's base width and blocks per stage, the text encoder (the tiny
  T5 / UMT5 of :mod:`.tiny_model` / :mod:`.tiny_wan` with their offline tokenizer: ``text_dim`` /
  ``caption_channels`` follow it), the CLIP image tower.

The real configs are small JSON files of facts, each naming its source: the hub repository, and the
conversion script and published inference config that define it (the hub is not reachable from here).
Each also carries the checkpoint's published native settings (``native``: fps, sizes, frames, steps,
guidance); the tiny model's ``dreamreel.json`` keeps the fps and shrinks the rest (:func:`tiny_settings`).
``ltx2`` is built by :mod:`.tiny_ltx2` from its own facts file.
"""

from __future__ import annotations

import inspect
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from dreamreel.engine.model_dir import SETTINGS_FILE
from dreamreel.engine.tiny_model import TEXT_DIM as T5_DIM
from dreamreel.engine.tiny_model import tiny_t5_encoder, tiny_vocabulary
from dreamreel.engine.tiny_wan import CLIP_DIM, CLIP_TOKENS, tiny_clip_image_encoder, tiny_umt5_encoder
from dreamreel.engine.tiny_wan import TEXT_DIM as UMT5_DIM
from dreamreel.engine.tokenizer import build_tokenizer

CONFIGS_PACKAGE = "dreamreel.engine"
CONFIGS_DIR = "real_configs"

LAYERS = 2
HEADS, HEAD_DIM = 2, 16
"""Every tiny transformer: 2 blocks of 2 heads of 16 (a hidden width of 32, the tiny text encoders' width)."""
FFN_DIM, FREQ_DIM = 64, 32
VAE_BASE_DIM = 8
"""Base width of a tiny Wan VAE (Wan 2.1: 96, Wan 2.2: 160); its decoder's keeps the real decoder/encoder ratio."""
LTX_VAE_DIVISOR = 16
"""LTX-Video's VAE block widths are divided by this (0.9.5+: 128..2048 -> 8..128)."""
UPSAMPLER_MID_CHANNELS = 32
"""The latent upsampler's width (real: 512); GroupNorm(32) needs a multiple of 32."""
MAX_SEQUENCE_LENGTH = 128
"""Prompt tokens the tiny text encoders read (real Wan: 512; LTX-Video: 128 in the tokenizer, 256 in the
condition pipeline)."""
TINY_STEPS = 2

FAMILY_CONFIGS: dict[str, str] = {
    "wan22-ti2v": "wan2.2-ti2v-5b",
    "wan22-t2v": "wan2.2-t2v-a14b",
    "wan22-i2v": "wan2.2-i2v-a14b",
}
"""The real config a family's tiny model is built from when only the family is named (``build-tiny-model
--family``): the families that have no hand-made tiny model."""


def real_config_names() -> tuple[str, ...]:
    """Every committed real config, by name (its file's stem)."""
    folder = resources.files(CONFIGS_PACKAGE).joinpath(CONFIGS_DIR)
    return tuple(sorted(entry.name[: -len(".json")] for entry in folder.iterdir() if entry.name.endswith(".json")))


def real_config(name: str) -> dict[str, Any]:
    """The facts of the public checkpoint ``name`` (``real_configs/<name>.json``)."""
    if name not in real_config_names():
        raise ValueError(f"no real config {name!r}; known: {', '.join(real_config_names())}")
    text = resources.files(CONFIGS_PACKAGE).joinpath(f"{CONFIGS_DIR}/{name}.json").read_text()
    facts = json.loads(text)
    if not isinstance(facts, dict) or "source" not in facts:
        raise ValueError(f"real config {name!r} must be a JSON object naming its source")
    return facts


def is_wan(facts: dict[str, Any]) -> bool:
    """A Wan checkpoint (``AutoencoderKLWan``), else LTX-Video (``AutoencoderKLLTXVideo``)."""
    return facts["vae"]["class"] == "AutoencoderKLWan"


def size_multiple(facts: dict[str, Any]) -> int:
    """Sides of the checkpoint's native sizes are multiples of this: VAE spatial compression x transformer patch
    (and 32 for LTX-Video, whose condition pipeline checks it whatever the VAE)."""
    vae, transformer = facts["vae"], facts["transformer"]
    if is_wan(facts):
        patch = transformer["patch_size"]
        return vae["scale_factor_spatial"] * math.lcm(patch[1], patch[2])
    return math.lcm(vae["spatial_compression_ratio"] * transformer["patch_size"], 32)


def frame_multiple(facts: dict[str, Any]) -> int:
    """Native frame counts are ``frame_multiple * k + 1``: the VAE's temporal compression x temporal patch."""
    vae, transformer = facts["vae"], facts["transformer"]
    if is_wan(facts):
        return vae["scale_factor_temporal"] * transformer["patch_size"][0]
    return vae["temporal_compression_ratio"] * transformer["patch_size_t"]


def tiny_settings(facts: dict[str, Any]) -> dict[str, Any]:
    """``dreamreel.json`` of the tiny model: the family and the real fps; the smallest useful grid (the short
    side one size multiple for Wan, whose multiple already includes its 2x2 patch, two for LTX-Video; three
    latent frames), two steps, no guidance."""
    wan = is_wan(facts)
    return {
        "family": facts["family"],
        "short_side": size_multiple(facts) * (1 if wan else 2),
        "fps": facts["native"]["fps"],
        "max_frames": frame_multiple(facts) * 2 + 1,
        "num_inference_steps": TINY_STEPS,
        "guidance_scale": 1.0,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
    }


def build_from_real_config(name: str, out_dir: Path, seed: int = 0) -> Path:
    """Build the tiny random checkpoint of the public checkpoint ``name`` into ``out_dir``; return it.

    The directory loads offline with the real checkpoint's pipeline class and holds a ``dreamreel.json`` naming
    its family (:func:`tiny_settings`). Same name and seed, same weights; the caller's RNG is left untouched.
    """
    import torch

    if name == "ltx2":
        from dreamreel.engine.tiny_ltx2 import build_tiny_ltx2

        return build_tiny_ltx2(out_dir, seed=seed)
    facts = real_config(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_proto = tiny_vocabulary()
    tokenizer = build_tokenizer(model_proto, MAX_SEQUENCE_LENGTH)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = _wan_pipeline(facts, tokenizer) if is_wan(facts) else _ltx_pipeline(facts, tokenizer, out)
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "tokenizer" / "spiece.model").write_bytes(model_proto)
    # Written last: its presence marks a complete build.
    (out / SETTINGS_FILE).write_text(json.dumps(tiny_settings(facts), indent=2) + "\n")
    return out


def _without(table: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in table.items() if key not in keys}


def _scheduler(facts: dict[str, Any]) -> Any:
    import diffusers

    config = facts["scheduler"]
    return getattr(diffusers, config["class"])(**_without(config, "class"))


def _pipeline(facts: dict[str, Any], components: dict[str, Any]) -> Any:
    """The real pipeline class with ``components`` and whichever of its config flags it takes."""
    import diffusers

    spec = facts["pipeline"]
    cls = getattr(diffusers, spec["class"])
    accepted = inspect.signature(cls.__init__).parameters
    flags = {key: value for key, value in _without(spec, "class").items() if key in accepted}
    return cls(**components, **flags)


def wan_transformer_config(facts: dict[str, Any]) -> dict[str, Any]:
    """The tiny transformer's config: the real one with depth and widths shrunk (module docstring)."""
    real = facts["transformer"]
    config = _without(real, "class")
    config.update(num_layers=LAYERS, num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, ffn_dim=FFN_DIM,
                  freq_dim=FREQ_DIM, text_dim=UMT5_DIM)
    if real.get("image_dim") is not None:
        config.update(image_dim=CLIP_DIM, added_kv_proj_dim=HEADS * HEAD_DIM)
    if real.get("pos_embed_seq_len") is not None:  # one position embedding per embedded image's tokens
        images = real["pos_embed_seq_len"] // facts["image_encoder"]["tokens_per_image"]
        config["pos_embed_seq_len"] = images * CLIP_TOKENS
    if "vace_layers" in real:
        config["vace_layers"] = [layer for layer in real["vace_layers"] if layer < LAYERS]
    return config


def wan_vae_config(facts: dict[str, Any]) -> dict[str, Any]:
    """The tiny VAE's config: the real downsampling pattern, patching, channels and scale factors; base width
    :data:`VAE_BASE_DIM`, one block per stage. Latent statistics: the facts', else the class defaults
    (Wan 2.1's)."""
    real = facts["vae"]
    config = _without(real, "class", "latents_stats")
    config.update(base_dim=VAE_BASE_DIM, num_res_blocks=1)
    if real.get("decoder_base_dim") is not None:
        config["decoder_base_dim"] = VAE_BASE_DIM * real["decoder_base_dim"] // real["base_dim"]
    if "latents_mean" not in real and real["z_dim"] != 16:
        raise ValueError(f"{facts['checkpoint']}: a {real['z_dim']}-channel VAE needs its latents_mean/latents_std")
    return config


def _wan_pipeline(facts: dict[str, Any], tokenizer: Any) -> Any:
    import diffusers

    components: dict[str, Any] = {"tokenizer": tokenizer, "text_encoder": tiny_umt5_encoder(len(tokenizer)).eval()}
    components["vae"] = diffusers.AutoencoderKLWan(**wan_vae_config(facts)).eval()
    transformer_class = getattr(diffusers, facts["transformer"]["class"])
    components["transformer"] = transformer_class(**wan_transformer_config(facts)).eval()
    if "transformer_2" in facts["components"]:  # the low-noise expert: same config, its own weights
        components["transformer_2"] = transformer_class(**wan_transformer_config(facts)).eval()
    if "image_encoder" in facts["components"]:
        projection = facts["components"]["image_encoder"] == "CLIPVisionModelWithProjection"
        clip, processor = tiny_clip_image_encoder(with_projection=projection)
        components.update(image_encoder=clip.eval(), image_processor=processor)
    components["scheduler"] = _scheduler(facts)
    return _pipeline(facts, components)


def ltx_transformer_config(facts: dict[str, Any]) -> dict[str, Any]:
    """LTX-Video's transformer shrunk: its cross-attention width is its hidden width (heads x head width)."""
    config = _without(facts["transformer"], "class")
    config.update(num_layers=LAYERS, num_attention_heads=HEADS, attention_head_dim=HEAD_DIM,
                  cross_attention_dim=HEADS * HEAD_DIM, caption_channels=T5_DIM)
    return config


def ltx_vae_config(facts: dict[str, Any]) -> dict[str, Any]:
    """LTX-Video's VAE with every block width divided by :data:`LTX_VAE_DIVISOR` and one layer per block; its
    block types, downsampling pattern, patching and compression ratios unchanged."""
    real = facts["vae"]
    config = _without(real, "class")
    config.update(
        block_out_channels=[width // LTX_VAE_DIVISOR for width in real["block_out_channels"]],
        decoder_block_out_channels=[width // LTX_VAE_DIVISOR for width in real["decoder_block_out_channels"]],
        layers_per_block=[1] * len(real["layers_per_block"]),
        decoder_layers_per_block=[1] * len(real["decoder_layers_per_block"]),
    )
    return config


def _ltx_pipeline(facts: dict[str, Any], tokenizer: Any, out: Path) -> Any:
    import diffusers

    components: dict[str, Any] = {"tokenizer": tokenizer, "text_encoder": tiny_t5_encoder(len(tokenizer)).eval()}
    components["vae"] = diffusers.AutoencoderKLLTXVideo(**ltx_vae_config(facts)).eval()
    components["transformer"] = diffusers.LTXVideoTransformer3DModel(**ltx_transformer_config(facts)).eval()
    components["scheduler"] = _scheduler(facts)
    if "latent_upsampler" in facts:  # a second stage, its own pipeline upstream: saved beside the pipeline
        from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

        upsampler = _without(facts["latent_upsampler"], "class", "repository")
        upsampler.update(mid_channels=UPSAMPLER_MID_CHANNELS, num_blocks_per_stage=1)
        LTXLatentUpsamplerModel(**upsampler).save_pretrained(out / "latent_upsampler", safe_serialization=True)
    return _pipeline(facts, components)
