"""Shapes of the embedded model's components, all standard diffusers/transformers classes.

Why these numbers (docs/model-card.md has the measurements): the transformer must see smooth
latents, not raw pixels, so a small LTX-Video VAE compresses 16x in space (patchify 4 + two 2x
stages) and 4x in time into 32 channels; at the native short side of 96 px a 16:9 clip is a 6x10
latent grid over 11 latent frames (660 tokens). The transformer is 128 wide with 4 layers: on a
CPU without bf16 kernels a training session buys about an hour of flow steps, and this size takes
~2.7x more of them in that hour than 192 x 6 (see ``TRANSFORMER_WIDTH``). A fresh run starts at 4
layers; the shipped model was grown to 8 once those had learned the world (``training/grow.py``).
The pipeline needs sides that are multiples of 32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel
from transformers import T5Config, T5EncoderModel

from dreamreel.core.request import AspectRatio
from dreamreel.engine.plan import frame_size


@dataclass(frozen=True)
class NativeFormat:
    """What the embedded model generates natively (written to ``dreamreel.json`` on export)."""

    short_side: int = 96
    size_multiple: int = 32
    fps: int = 8
    frames: int = 41
    """5 s at 8 fps, as ``4k + 1``; 9 s requests use the same 41 frames, played slower."""


NATIVE = NativeFormat()

SAMPLER_DEFAULTS = {"num_inference_steps": 20, "guidance_scale": 6.0}
"""Written to ``dreamreel.json``. Guidance 6, not LTX-Video's 3: on the flow-step-11,500 model,
`dreamreel-lab eval --prompts 24 --aspects 16:9,9:16 --guidance G` measured mean attribute accuracy 44.2 / 45.0 / 47.5 /
45.4 % at G = 1.5 / 3 / 6 / 9, and adjacent-frame difference 1.64 / 1.66 / 2.00 / 2.39 against the
rendered clips' 2.21 (chosen on the eval's own prompts, so the 6's edge is optimistic)."""

LOOP_ON_IMAGE = "fade"
"""Written to ``dreamreel.json`` (``engine/backends/common.py``): a loop on a start image dissolves back into its
first frame rather than asking the model to land its last frame on the image. On an earlier shipped model
(``bench/bench_controls.py``) the keyframe-closed loop wrapped with a jump of 77x the clip's median step
(its end keyframes land at 11 dB); the fade wraps at 0.94x, with the first frame unchanged (18.0 dB)."""

CAMERA_MOVES = "virtual"
"""Written to ``dreamreel.json``: a camera concept also moves a virtual camera over the generated frames
(``media/camera.py``). The flow follows the captions' camera words on about one clip in ten
(``bench/bench_concepts.py``: 11.4 % on an earlier shipped model, chance 11.1 %)."""

LATENT_CHANNELS = 32
"""A 16x16x4 pixel block is 3,072 values. With 16 channels (192x, the real LTX ratio) a 10,000-step
VAE drew colours (92 %) but not shapes (17 %); 32 channels halve the squeeze at the same token count
and, measured, the same step time."""
VAE_PATCH = 4
TRANSFORMER_PATCH = 1
"""Must stay 1: ``LTXConditionPipeline`` draws its initial latents with ``transformer.in_channels``
channels, so a transformer that reads 2x2 latent patches (in_channels = 4 x latent channels) cannot
run in the stock pipeline. The token count is therefore the latent cell count: 16x spatial and 4x
temporal compression give 660 tokens for a 16:9 clip; 8x spatial would give 2,640."""
TRANSFORMER_HEADS = 4
TRANSFORMER_LAYERS = 4
TRANSFORMER_WIDTH = TRANSFORMER_HEADS * 32
"""Not 6 heads x 32 (192) x 6 layers, 3.9 M params: that costs ~3.1 s a batch-8 step in float32 on an
AVX2-only CPU, so an hour of training gives ~1,000 steps, too few to follow prompts. 128 x 4
(1.25 M params) costs ~2.7x fewer FLOPs a step (weights and attention at 660 tokens); a contended
timing on this machine put it 2.5-4x faster. A bf16-capable CPU does not change this (measured
on AVX-512 BF16, warm, batch 8): 128 x 4 steps in 0.80 s in either precision, 192 x 6 in 1.55 s bf16
against 1.70 s float32."""
SPATIAL_RATIO = VAE_PATCH * 4
TEMPORAL_RATIO = 4
TEXT_DIM = 128
TEXT_MAX_TOKENS = 48
"""World captions are short; the pipeline is called with ``max_sequence_length`` this long."""
VOCAB_SIZE = 1000


def native_size(aspect: AspectRatio) -> tuple[int, int]:
    """(width, height) of a native clip at this aspect, as the planner computes it."""
    return frame_size(aspect, NATIVE.short_side, NATIVE.size_multiple)


def make_vae() -> AutoencoderKLLTXVideo:
    return AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(32, 64, 64),
        down_block_types=("LTXVideoDownBlock3D",) * 3,
        decoder_block_out_channels=(32, 64, 64),
        layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False),
        decoder_spatio_temporal_scaling=(True, True, False),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("conv", "conv", "conv"),
        upsample_residual=(False, False, False),
        upsample_factor=(1, 1, 1),
        timestep_conditioning=False,
        patch_size=VAE_PATCH,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )


ROPES: dict[str, dict[str, float] | None] = {
    "stock": None,
    "grid": {"theta": 20.0, "base_num_frames": 12.0, "base_height": 384.0, "base_width": 384.0},
}
"""Rotary position embeddings a flow run can train with (``dreamreel-lab train --rope``).

``stock`` is LTX-Video's, laid out for 2048-px frames: on this model's grid (16 px a cell, 0.5 s a
latent frame) its 21 frequencies per axis turn 0.025 to 245 radians per cell, and the hidden width's
four heads get one band each. Head 0 sees under 0.16 rad a cell (no position at all), heads 2 and 3
see over 2.4 rad (aliased). Measured on the step-25,000 model (``bench/probe_attention.py``: attention
of every block on a world clip at sigma 0.6): heads 0 and 2 attend almost uniformly over all 660 tokens in
most blocks (entropy 6.2-6.5 nats of 6.49), so half of the attention only averages. ``grid`` puts
all 21 frequencies where this grid can use them: 0.13 to 2.6 rad a cell and a latent frame.
Trained from nothing against stock (same batches, 5,000 steps each): 8 % higher loss and
no better motion (13.5 % against 17.5 % on 200 held-out clips), so the recipe keeps ``stock``.
"""


ROPE_KEYS = frozenset({"theta", "base_num_frames", "base_height", "base_width"})
"""Attributes of ``LTXVideoRotaryPosEmbed`` that a ``rope`` (one of ``ROPES``, or ``dreamreel.json``'s) may set."""


def tune_rope(transformer: torch.nn.Module, rope: dict[str, float] | None) -> None:
    """Set the rotary position embedding's frequency range and grid scale.

    LTX-Video scales positions for its own latent grid (coordinates divided by 2048 px and 20 s,
    frequencies 1 to 10,000) and applies them across the whole hidden width before splitting it into
    heads, so each head gets one band of frequencies. A model trained on another grid carries its own
    values in its ``dreamreel.json`` (``export``); ``None`` (every published checkpoint) keeps the stock
    embedding. The values live outside ``config.json`` because the stock class hard-codes them there, so
    nothing but this function sets them up: the service refuses such a checkpoint, and the lab's sampler
    (``sampler.load_backend``) applies them after loading it.
    """
    if not rope:
        return
    unknown = set(rope) - ROPE_KEYS
    if unknown:
        raise ValueError(f"unknown rope settings {sorted(unknown)}; allowed: {sorted(ROPE_KEYS)}")
    for key, value in rope.items():
        setattr(transformer.rope, key, float(value))


def make_transformer(layers: int = TRANSFORMER_LAYERS, rope: dict[str, float] | None = None
                     ) -> LTXVideoTransformer3DModel:
    """``layers`` other than the default is a model grown by ``training/grow.py``; ``rope`` is one of
    ``ROPES`` (``None``: the stock embedding)."""
    transformer = LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=TRANSFORMER_PATCH,
        patch_size_t=1,
        num_attention_heads=TRANSFORMER_HEADS,
        attention_head_dim=32,
        cross_attention_dim=TRANSFORMER_WIDTH,
        num_layers=layers,
        caption_channels=TEXT_DIM,
    )
    tune_rope(transformer, rope)
    return transformer


def make_text_encoder(vocab_size: int = VOCAB_SIZE) -> T5EncoderModel:
    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=TEXT_DIM,
            d_kv=32,
            d_ff=256,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=16,
            relative_attention_max_distance=64,
            feed_forward_proj="gated-gelu",
            dropout_rate=0.0,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            use_cache=False,
        )
    )


def make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    # The condition pipeline passes its own timesteps and no ``mu``: dynamic shifting must be off.
    return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
