"""Build a tiny, random, offline LTX-Video condition pipeline.

Why this exists: until the trained embedded model exists, this tiny random model of the same
architecture is the default model and the test fixture. It is made of the real diffusers and
transformers classes (``AutoencoderKLLTXVideo``, ``LTXVideoTransformer3DModel``, ``T5EncoderModel``,
``T5TokenizerFast``, ``FlowMatchEulerDiscreteScheduler``) wired into a real ``LTXConditionPipeline``,
so every code path that loads, plans for and runs a real checkpoint is exercised, in seconds on a CPU
and without downloading anything. Its output is noise-like video: the weights are random.

Everything is built from code, offline and deterministically: the tokenizer's vocabulary is a
SentencePiece model trained at build time on a small built-in caption corpus, and the weights are
drawn from a seeded torch RNG (the caller's global RNG state is left untouched).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from dreamreel.engine.model_dir import SETTINGS_FILE
from dreamreel.engine.tokenizer import build_tokenizer, train_sentencepiece

if TYPE_CHECKING:
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
    from transformers import T5EncoderModel

MODEL_FAMILY = "ltx-condition"
"""Value of ``family`` in ``dreamreel.json``; matches ``LTXConditionBackend.name``."""

TINY_SETTINGS: dict[str, object] = {
    "family": MODEL_FAMILY,
    "short_side": 64,
    "fps": 8,
    "num_inference_steps": 8,
    "guidance_scale": 1.0,
}
"""Native defaults of the tiny model. Guidance 1.0 skips the unconditional pass (CFG is off)."""

VOCAB_SIZE = 512
"""SentencePiece vocabulary size, special tokens included."""

MAX_SEQUENCE_LENGTH = 256
"""Tokenizer ``model_max_length``: the condition pipeline's default ``max_sequence_length``."""

LATENT_CHANNELS = 16
TEXT_DIM = 32
"""T5 ``d_model``; the transformer's ``caption_channels`` must equal it."""

_CORPUS_SEED = 20240601
"""Fixed (not the model seed) so every build produces the same vocabulary."""

_COLOURS = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black", "grey",
    "golden", "silver", "teal", "crimson", "pale", "bright", "dark", "pastel", "brown", "violet",
    "turquoise", "scarlet", "emerald", "amber", "ivory", "navy", "magenta", "bronze", "copper",
    "lavender", "olive", "maroon", "cyan", "beige", "striped", "spotted", "glowing", "transparent",
)  # fmt: skip
_MATERIALS = (
    "wooden", "metal", "glass", "plastic", "paper", "woolen", "rubber", "stone", "marble", "ceramic",
    "shiny", "matte", "fluffy", "furry", "crystal", "velvet", "icy", "rusty", "tiny", "huge",
    "small", "large", "old", "new", "soft", "smooth", "rough", "wet",
)  # fmt: skip
_SUBJECTS = (
    "ball", "cube", "sphere", "triangle", "square", "circle", "cone", "cylinder", "star", "ring",
    "balloon", "kite", "bird", "fish", "leaf", "feather", "paper boat", "car", "train", "cat",
    "dog", "horse", "butterfly", "drop of water", "cloud", "flower", "tree", "candle flame",
    "robot", "bicycle", "umbrella", "jellyfish", "whale", "rabbit", "fox", "owl", "dragon",
    "teapot", "clock", "lantern", "spaceship", "airplane", "sailboat", "rocket", "snowflake",
    "bubble", "apple", "banana", "pumpkin", "guitar", "piano", "book", "chair", "lamp", "hat",
    "scarf", "shoe", "bottle", "cup", "wheel", "spiral", "pyramid", "heart", "moon", "planet",
    "dolphin", "turtle", "penguin", "elephant", "giraffe", "squirrel", "mouse", "duck", "swan",
    "lion", "tiger", "bear", "wolf", "deer", "frog", "snail", "bee", "ladybug", "octopus", "crab",
    "parrot", "eagle", "chicken", "cow", "sheep", "goat", "pig", "monkey", "panda", "koala",
    "motorcycle", "bus", "truck", "tractor", "helicopter", "submarine", "skateboard", "surfer",
    "dancer", "skier", "runner", "chef", "painter", "musician", "astronaut", "knight", "wizard",
    "castle", "lighthouse", "windmill", "bridge", "fountain", "volcano", "island", "cactus",
    "mushroom", "sunflower", "tulip", "pinecone", "seashell", "pebble", "coin", "key", "envelope",
)  # fmt: skip
_MOTIONS = (
    "rolls slowly", "bounces", "spins", "floats", "drifts", "falls", "rises", "slides",
    "glides", "flies", "swims", "runs", "walks", "sways gently", "pulses", "flickers",
    "rotates", "zooms past", "wobbles", "tumbles", "melts", "grows", "shrinks", "waves",
    "jumps", "dances", "hops", "crawls", "twirls", "shakes", "vibrates", "sparkles", "dissolves",
    "explodes", "splashes", "swings", "orbits", "circles", "hovers", "dives", "climbs", "sinks",
    "stretches", "bends", "unfolds", "opens", "closes", "blinks", "breathes", "shimmers",
    "wanders", "marches", "skips", "gallops", "paddles", "sprints", "leaps", "flutters", "soars",
    "trembles", "glows", "fades", "scatters", "collapses", "expands", "ripples", "bobs", "drops",
)  # fmt: skip
_ADVERBS = (
    "slowly", "quickly", "gently", "smoothly", "suddenly", "steadily", "lazily", "playfully",
    "gracefully", "rapidly", "calmly", "wildly", "silently", "softly", "endlessly",
)  # fmt: skip
_DIRECTIONS = (
    "from left to right", "from right to left", "upward", "downward", "in a circle",
    "toward the camera", "away from the camera", "across the frame", "in place", "back and forth",
    "along the road", "through the air", "around the center", "over the water", "into the distance",
    "between the trees", "under a bridge", "along the shore", "up the hill", "down the stairs",
)  # fmt: skip
_BACKGROUNDS = (
    "on a white background", "against a blue sky", "over a green field", "on a wooden table",
    "in a dark room", "on a sandy beach", "under the ocean", "in a snowy forest",
    "on a city street at night", "in front of a brick wall", "above the clouds", "in a desert at sunset",
    "on a calm lake", "inside a kitchen", "in a foggy valley", "on a checkered floor",
    "in a busy market", "on a mountain peak", "in a jungle", "near a waterfall", "in outer space",
    "on a rooftop", "in a library", "in a garden full of roses", "on a frozen pond", "inside a cave",
    "in a meadow with wildflowers", "at a train station", "in a neon city", "on a farm",
    "by the river", "in a living room", "on a stage", "in a parking lot", "at the harbor",
)  # fmt: skip
_CAMERA = (
    "the camera is static", "the camera pans left", "the camera pans right", "the camera tilts up",
    "the camera tilts down", "the camera zooms in", "the camera zooms out", "slow dolly shot",
    "handheld camera", "aerial view", "close-up shot", "wide shot", "tracking shot", "time lapse",
    "overhead view", "low angle shot", "drone footage", "macro shot", "orbit shot", "crane shot",
    "the camera follows the subject", "the camera pushes forward", "the camera pulls back",
)  # fmt: skip
_LIGHT = (
    "soft light", "warm light", "cold light", "harsh shadows", "golden hour", "neon glow",
    "overcast", "sunlight", "moonlight", "studio lighting", "candlelight", "backlit",
    "dramatic lighting", "morning mist", "light rain", "heavy snow", "stormy weather",
    "clear day", "at dawn", "at dusk", "at midnight",
)  # fmt: skip
_STYLE = (
    "photorealistic", "cinematic", "cartoon style", "watercolor", "film grain", "high detail",
    "minimalist", "slow motion", "vivid colors", "muted tones", "anime style", "oil painting",
    "pixel art", "claymation", "black and white", "vintage film", "documentary", "dreamy",
    "sharp focus", "shallow depth of field", "long exposure", "surreal", "4k",
)  # fmt: skip

_DETAILS = (
    "with long shadows", "with sparkling reflections", "with petals falling around it",
    "with smoke curling behind it", "with confetti in the air", "with raindrops on the lens",
    "with autumn leaves blowing", "with fireflies glowing nearby", "with ripples spreading outward",
    "with dust floating in sunbeams", "with steam rising", "with a rainbow overhead",
    "with lightning flashing", "with children laughing nearby", "with music notes drifting",
    "with a crowd watching", "while birds sing", "while snow keeps falling", "while waves crash",
    "while the wind blows", "while traffic passes", "while fireworks burst", "while lanterns sway",
    "next to two wooden boxes", "next to three glass jars", "beside a sleeping puppy",
    "beside an open window", "near a glowing fireplace", "near a mossy rock", "behind a metal fence",
    "surrounded by tall grass", "surrounded by floating lights", "surrounded by colorful paper",
    "reflected in a puddle", "reflected in a mirror", "framed by curtains", "framed by palm trees",
    "covered in frost", "covered in paint", "covered in sand", "wrapped in ribbons",
    "carrying a basket", "holding an umbrella", "wearing sunglasses", "chasing its shadow",
)  # fmt: skip


def caption_corpus(n: int = 800) -> list[str]:
    """A deterministic list of ``n`` short English video captions (the tokenizer's training text)."""
    rng = random.Random(_CORPUS_SEED)
    captions: list[str] = []
    for i in range(n):
        adjective = f"{rng.choice(_MATERIALS)} {rng.choice(_COLOURS)}" if i % 2 else rng.choice(_COLOURS)
        subject = rng.choice(_SUBJECTS)
        article = "An" if adjective[0] in "aeiou" else "A"
        motion, direction = rng.choice(_MOTIONS), rng.choice(_DIRECTIONS)
        if i % 5 == 4:
            motion = f"{rng.choice(_ADVERBS)} {motion}"
        if i % 2 == 0:
            direction = f"{direction} {rng.choice(_DETAILS)}"
        where, camera = rng.choice(_BACKGROUNDS), rng.choice(_CAMERA)
        light, style = rng.choice(_LIGHT), rng.choice(_STYLE)
        thing = f"{adjective} {subject}"
        if i % 3 == 0:
            caption = f"{article} {thing} {motion} {direction} {where}. {camera.capitalize()}."
        elif i % 3 == 1:
            caption = f"{camera.capitalize()}: {article.lower()} {thing} {motion} {where}, {light}."
        else:
            caption = f"{article} {thing} {motion} {direction}, {where}, {light}, {style}, {camera}."
        captions.append(caption)
    return captions


def tiny_vocabulary() -> bytes:
    """The serialized SentencePiece model every tiny model's tokenizer is built from (same for all seeds)."""
    return train_sentencepiece(caption_corpus(), VOCAB_SIZE, seed=_CORPUS_SEED)


def tiny_t5_encoder(vocab_size: int) -> T5EncoderModel:
    """A two-layer T5 v1.1-style encoder of width :data:`TEXT_DIM` (weights from the current RNG): the tiny
    stand-in for LTX-Video's T5 v1.1 XXL, shared with the models built from real configs (``tiny_real``)."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=32,
            feed_forward_proj="gated-gelu",  # as in T5 v1.1, the encoder LTX-Video uses
            dropout_rate=0.0,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            use_cache=False,
        )
    )


def _build_components(
    vocab_size: int,
) -> tuple[T5EncoderModel, AutoencoderKLLTXVideo, LTXVideoTransformer3DModel]:
    """Instantiate the three torch modules of the pipeline (weights come from the current RNG)."""
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel

    text_encoder = tiny_t5_encoder(vocab_size)
    # Mirrors LTX-Video 0.9.5+ (the VAE the condition pipeline was written for: 0.9.5-style down
    # blocks, residual upsampling, timestep-conditioned decoder) scaled down: patch 1 and three
    # 2x spatio-temporal stages give spatial 8 and temporal 8 compression.
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 16, 32, 32),
        down_block_types=("LTXVideo095DownBlock3D",) * 4,
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=True,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        spatial_compression_ratio=8,
        temporal_compression_ratio=8,
    )
    transformer = LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,  # the pipeline packs latents assuming in_channels already is the token width
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=16,
        cross_attention_dim=32,  # = heads * head_dim, as in the real model
        num_layers=2,
        caption_channels=TEXT_DIM,
    )
    return text_encoder, vae, transformer


def build_tiny_ltx(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny random ``LTXConditionPipeline`` into ``out_dir`` and return that path.

    The directory loads offline with ``LTXConditionPipeline.from_pretrained(out_dir)`` and holds a
    ``dreamreel.json`` with the model's native defaults. Same ``seed``, same weights; the tokenizer is
    identical for every seed.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, LTXConditionPipeline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model_proto = tiny_vocabulary()
    tokenizer = build_tokenizer(model_proto, MAX_SEQUENCE_LENGTH)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder, vae, transformer = _build_components(len(tokenizer))

    # The condition pipeline passes its own timestep schedule and no ``mu``, so dynamic shifting
    # must be off (with it on, ``set_timesteps`` raises).
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False, shift=1.0)

    pipe = LTXConditionPipeline(
        scheduler=scheduler,
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        transformer=transformer.eval(),
    )
    pipe.save_pretrained(out, safe_serialization=True)
    # Kept beside tokenizer.json (which is what loads) so the vocabulary's source model ships too.
    (out / "tokenizer" / "spiece.model").write_bytes(model_proto)
    # Written last: its presence marks a complete build.
    (out / SETTINGS_FILE).write_text(json.dumps(TINY_SETTINGS, indent=2) + "\n")
    return out
