"""Build a tiny, random, offline LTX-2 condition pipeline (video with audio) from the real checkpoint's facts.

Why: the ``ltx2`` family's tests and the GPU device check need an LTX-2 that loads and runs in seconds without
downloading 40 GB. Every component is the real diffusers/transformers class (``LTX2VideoTransformer3DModel``,
``AutoencoderKLLTX2Video``, ``AutoencoderKLLTX2Audio``, ``LTX2Vocoder``, ``LTX2TextConnectors``,
``Gemma3ForConditionalGeneration``, ``GemmaTokenizer``, ``FlowMatchEulerDiscreteScheduler``) built from
``real_configs/ltx2.json``: depth and width are shrunk, while every fact that fixes a tensor's shape between
components is kept, so a shape bug shows here before it shows on a GPU:

* video latents: 128 channels, VAE patch 4 and spatial compression 32, temporal compression 8 (frames
  ``8k+1``), transformer patch 1x1, the same down/upsampling block types;
* audio: stereo mel spectrograms of 64 bins at 16 kHz with hop 160, 8 latent channels, 4x compression in time
  and mel (128 packed audio channels), a vocoder upsampling 240x to 24 kHz stereo;
* text: a Gemma 3 encoder read layer by layer (``text_proj_in_factor`` = layers + 1), 128 learnable registers
  in the connectors (so prompts are padded to a multiple of 128 tokens), left padding;
* the scheduler's config exactly.

Shrunk: transformer and connector widths and depths, the VAEs' channel counts and depth, the vocoder's width,
the Gemma encoder (2 layers, width 32, a 512-piece BPE vocabulary trained at build time on the tiny LTX model's
caption corpus) and its vision tower. One quirk is kept on purpose: diffusers sizes the audio VAE's latent
statistics by ``base_channels``, which must therefore stay 128 (= packed audio channels), as in the real model.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.engine.model_dir import SETTINGS_FILE

if TYPE_CHECKING:
    from transformers import GemmaTokenizer

MODEL_FAMILY = "ltx2"
"""Value of ``family`` in ``dreamreel.json``; matches ``LTX2Backend.name``."""

TINY_SETTINGS: dict[str, object] = {
    "family": MODEL_FAMILY,
    "short_side": 64,
    "fps": 8,
    "max_frames": 121,
    "num_inference_steps": 2,
    "guidance_scale": 1.0,
    "audio_guidance_scale": 1.0,
    "max_sequence_length": 128,
}
"""Native defaults of the tiny model: 64 px is two latent cells of the real 32-px grid; 8 fps keeps a 5 s clip at
41 frames (6 latent frames). Guidance 1.0 for video and audio skips the unconditional pass."""

VOCAB_SIZE = 512
TEXT_DIM = 32
"""The tiny Gemma's hidden size: the connectors' ``caption_channels`` and the transformer's."""
TEXT_LAYERS = 2
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_image>", "<end_of_image>",
                  "<image_soft_token>")
"""Gemma's layout: pad 0, eos 1, bos 2, unk 3, mask 4; then the image markers the multimodal config names."""


def real_config() -> dict[str, Any]:
    """The committed facts of the public LTX-2 checkpoint (``real_configs/ltx2.json``)."""
    text = resources.files("dreamreel.engine").joinpath("real_configs/ltx2.json").read_text()
    return json.loads(text)


def build_tokenizer(max_length: int) -> GemmaTokenizer:
    """A ``GemmaTokenizer`` (BPE, spaces as ``▁``, left padding) trained offline on the tiny model's captions."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    from dreamreel.engine.tiny_model import caption_corpus

    bpe = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split(pattern="▁", behavior="merged_with_next")
    # Printable ASCII as the alphabet, so a prompt's rare characters (``Z``, ``!``) are tokens, not ``<unk>``.
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=[chr(code) for code in range(33, 127)])
    bpe.train_from_iterator(caption_corpus(), trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(pair) if isinstance(pair, list) else tuple(pair.split(" ")) for pair in state["merges"]]
    return GemmaTokenizer(vocab=state["vocab"], merges=merges, model_max_length=max_length, padding_side="left",
                          add_bos_token=True,
                          extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                                                "image_token": "<image_soft_token>"})


def _shrunk(facts: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``facts`` without the bookkeeping key ``class``, with ``changes`` applied (every change must name a key of
    the real config, so a renamed fact fails the build instead of silently keeping a default)."""
    unknown = set(changes) - set(facts)
    if unknown:
        raise KeyError(f"not in the real config: {sorted(unknown)}")
    return {key: value for key, value in facts.items() if key != "class"} | changes


def tiny_configs(real: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each component's constructor arguments: the real facts, shrunk in depth and width only."""
    text_dim = TEXT_DIM
    return {
        "transformer": _shrunk(real["transformer"], num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
                               audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
                               num_layers=2, caption_channels=text_dim),
        "vae": _shrunk(real["vae"], block_out_channels=[8, 16, 32, 32], decoder_block_out_channels=[8, 16, 32],
                       layers_per_block=[1, 1, 1, 1, 1], decoder_layers_per_block=[1, 1, 1, 1]),
        # base_channels stays 128: diffusers sizes the latent statistics by it (module docstring).
        "audio_vae": _shrunk(real["audio_vae"], ch_mult=[1, 1, 1], num_res_blocks=0),
        "vocoder": _shrunk(real["vocoder"], hidden_channels=32),
        "connectors": _shrunk(real["connectors"], caption_channels=text_dim, text_proj_in_factor=TEXT_LAYERS + 1,
                              video_connector_num_attention_heads=2, video_connector_attention_head_dim=text_dim // 2,
                              video_connector_num_layers=1, audio_connector_num_attention_heads=2,
                              audio_connector_attention_head_dim=text_dim // 2, audio_connector_num_layers=1),
        "scheduler": _shrunk(real["scheduler"]),
    }


def _text_encoder(tokenizer: GemmaTokenizer) -> Any:
    """A two-layer Gemma 3 (with a one-layer SigLIP vision tower, which the text path never runs)."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=Gemma3TextConfig(
            vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=64, num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
            sliding_window=64, max_position_embeddings=1024,
            pad_token_id=ids("<pad>"), eos_token_id=ids("<eos>"), bos_token_id=ids("<bos>"),
        ),
        vision_config=SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=28, patch_size=14),
        mm_tokens_per_image=4,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    return Gemma3ForConditionalGeneration(config)


def build_tiny_ltx2(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny random ``LTX2ConditionPipeline`` into ``out_dir``; return that path.

    The directory loads offline with ``LTX2ConditionPipeline.from_pretrained(out_dir)`` and holds a
    ``dreamreel.json`` (family ``ltx2``, the native defaults). Same ``seed``, same weights; the tokenizer is the same
    for every seed. The caller's global RNG state is left untouched."""
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2ConditionPipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configs = tiny_configs(real_config())
    tokenizer = build_tokenizer(int(TINY_SETTINGS["max_sequence_length"]))  # type: ignore[call-overload]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        components = {
            "transformer": LTX2VideoTransformer3DModel(**configs["transformer"]),
            "vae": AutoencoderKLLTX2Video(**configs["vae"]),
            "audio_vae": AutoencoderKLLTX2Audio(**configs["audio_vae"]),
            "vocoder": LTX2Vocoder(**configs["vocoder"]),
            "connectors": LTX2TextConnectors(**configs["connectors"]),
            "text_encoder": _text_encoder(tokenizer),
        }
    pipe = LTX2ConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**configs["scheduler"]),
        tokenizer=tokenizer,
        **{name: module.eval() for name, module in components.items()},
    )
    pipe.save_pretrained(out, safe_serialization=True)
    # Written last: its presence marks a complete build.
    (out / SETTINGS_FILE).write_text(json.dumps(TINY_SETTINGS, indent=2) + "\n")
    return out
