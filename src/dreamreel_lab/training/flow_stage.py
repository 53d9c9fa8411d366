"""Stage 3: train the text encoder and transformer with rectified flow on cached latents.

Conventions mirror ``LTXConditionPipeline`` exactly, so the exported model samples correctly:
- ``x_sigma = sigma * noise + (1 - sigma) * x0``; the transformer gets ``timestep = sigma * 1000``
  per token and predicts ``noise - x0`` (the pipeline steps with ``-noise_pred`` on per-token sigmas).
- Positions come from the pipeline's own ``_prepare_video_ids``/``_scale_video_ids``, time divided by
  the frame rate.
- Random frame conditioning, as the pipeline applies it at inference: a first-frame image or a
  leading clip replaces the first latent frames in-sequence (timestep 0, excluded from the loss); an
  end keyframe is an extra set of tokens (its own single-frame latent) positioned at the last frame
  index and prepended to the sequence; so is a trailing clip (reverse-extend: the source's first
  frames, encoded alone, positioned where they land at the end). Conditioned tokens carry the pipeline's small
  ``image_cond_noise_scale * sigma**2`` noise.
- Captions are dropped 10 % of the time so classifier-free guidance works.
- Tokens whose latent cell holds part of an object weigh ``1 + object_weight`` in the loss.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from diffusers import LTXConditionPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import linear_quadratic_schedule

from dreamreel_lab.training.architecture import (
    NATIVE,
    ROPES,
    SAMPLER_DEFAULTS,
    SPATIAL_RATIO,
    TEMPORAL_RATIO,
    TEXT_MAX_TOKENS,
    TRANSFORMER_LAYERS,
    TRANSFORMER_PATCH,
    make_text_encoder,
    make_transformer,
)
from dreamreel_lab.training.checkpoint import StageLog, StageRun, load_checkpoint, save_checkpoint, warmup_cosine
from dreamreel_lab.training.grow import block_count, deepen
from dreamreel_lab.training.latents_stage import TAIL_FRAMES
from dreamreel_lab.training.precision import use_bf16

IMAGE_COND_NOISE_SCALE = 0.15
"""The pipeline's default ``image_cond_noise_scale``: conditioned latents get ``scale * noise * sigma**2``."""

CONDITIONING_MODES = ("none", "first", "last", "first_last", "leading", "trailing")
CONDITIONING_WEIGHTS = (0.35, 0.2, 0.1, 0.1, 0.15, 0.1)
"""How often each condition is trained. ``trailing`` is there for reverse-extend: without it (none 0.4,
first 0.2, last 0.12, first_last 0.13, leading 0.15) reverse-extend is sampled on a layout the flow
has never seen, and its seam measured 17x the clip's median step against extend's 8x
(``bench/bench_controls.py``)."""


@dataclass(frozen=True)
class FlowConfig:
    steps: int = 15000
    """About 3-4 h at 0.7-0.95 s a step (batch 8, float32, two threads; measured in training runs), inside
    what the 10-hour budget leaves after the VAE (0.65 h) and the latent cache (0.3 h)."""
    batch_size: int = 8
    lr: float = 4e-4
    warmup: int = 500
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    bf16: bool | None = False
    """float32 by default: at 128 x 4 a batch-8 step measured the same in both precisions even on a CPU
    with AVX-512 BF16 (0.80 s float32 warm vs 0.81 s bf16), so bf16 would only lose
    precision. ``None`` lets ``training/precision.py``'s probe decide; its conv3d-heavy workload
    speaks for the VAE (1.8x faster there), not for a transformer this small."""
    object_weight: float = 4.0
    """Extra loss weight on object cells (about 10 % of tokens; with 4 they carry ~30 % of the loss).
    Unweighted, a probe after 2,000 steps drew the right scenery and no objects at all:
    colour 0 %, background 83 %."""
    caption_dropout: float = 0.1
    seed: int = 3
    layers: int | None = None
    """Transformer blocks. ``None``: what the checkpoint holds (``TRANSFORMER_LAYERS`` for a fresh run);
    more than the checkpoint holds deepens it first (``training/grow.py``), keeping what it learned."""
    rope: str | None = None
    """A key of ``ROPES``. ``None``: what the work dir trained with (``rope.json``; stock for a fresh run).
    Naming another switches a trained transformer's position embedding, and it trains on from there."""
    conditioning: tuple[tuple[str, float], ...] = ()
    """Overrides of ``CONDITIONING_WEIGHTS`` as (mode, weight) pairs (``dreamreel-lab train --conditioning
    first=0.3,none=0.25``); modes not named keep their weight. Weights need not sum to 1."""
    checkpoint_every: int = 200
    log_every: int = 25


class LatentBatch(NamedTuple):
    latents: torch.Tensor
    """(B, C, F, H, W) normalised clip latents."""
    last: torch.Tensor
    """(B, C, 1, H, W) the last frame encoded alone (an end keyframe's condition)."""
    tail: torch.Tensor | None
    """(B, C, 2, H, W) the last ``TAIL_FRAMES`` frames encoded alone (a reverse-extend's condition);
    None for a cache built without it (an older cache)."""
    objects: torch.Tensor
    """(B, F, H, W) bool: latent cells an object touches."""
    captions: list[str]


class LatentCache:
    """Shards of cached latents in memory (fp16: a few hundred MB for the whole cache)."""

    def __init__(self, cache_dir: Path) -> None:
        self.shards = [torch.load(p, weights_only=False) for p in sorted(cache_dir.glob("shard-*.pt"))]
        if not self.shards:
            raise FileNotFoundError(f"no latent shards in {cache_dir}; run the latents stage first")

    def batch(self, rng: np.random.Generator, size: int) -> LatentBatch:
        shard = self.shards[int(rng.integers(len(self.shards)))]
        index = rng.choice(len(shard["latents"]), size=size, replace=False)
        captions = [shard["captions"][i][int(rng.integers(len(shard["captions"][i])))] for i in index]
        latents = shard["latents"][index].float()
        objects = shard["objects"][index] if "objects" in shard else torch.zeros(latents[:, 0].shape, dtype=torch.bool)
        tail = shard["tail"][index].float() if "tail" in shard else None
        return LatentBatch(latents, shard["last"][index].float(), tail, objects, captions)

    def modes(self, overrides: tuple[tuple[str, float], ...] = ()) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """The conditioning modes this cache can train, with their weights (``overrides`` replacing some)."""
        has_tail = all("tail" in shard for shard in self.shards)
        weights = conditioning_weights(overrides)
        pairs = [(m, w) for m, w in weights.items() if w > 0 and (has_tail or m != "trailing")]
        return tuple(m for m, _ in pairs), tuple(w for _, w in pairs)


def conditioning_weights(overrides: tuple[tuple[str, float], ...] = ()) -> dict[str, float]:
    """``CONDITIONING_WEIGHTS`` by mode with ``overrides`` applied; an unknown mode or a negative weight is an error."""
    weights = dict(zip(CONDITIONING_MODES, CONDITIONING_WEIGHTS, strict=True))
    for mode, weight in overrides:
        if mode not in weights:
            raise ValueError(f"unknown conditioning mode {mode!r}; known: {', '.join(CONDITIONING_MODES)}")
        if weight < 0:
            raise ValueError(f"conditioning weight for {mode!r} must be >= 0, got {weight}")
        weights[mode] = weight
    return weights


def parse_conditioning(text: str) -> tuple[tuple[str, float], ...]:
    """``"first=0.3,none=0.25"`` -> ``(("first", 0.3), ("none", 0.25))``, checked against the known modes."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        mode, sep, weight = item.partition("=")
        if not sep:
            raise ValueError(f"expected mode=weight, got {item!r}")
        pairs.append((mode.strip(), float(weight)))
    conditioning_weights(tuple(pairs))
    return tuple(pairs)


def lr_at(step: int, config: FlowConfig) -> float:
    """Warm-up then cosine to 5 %; a short run (``--steps``) warms up for at most a tenth of its steps."""
    warmup = min(config.warmup, config.steps // 10)
    return warmup_cosine(step, peak=config.lr, warmup=warmup, total=config.steps, floor=0.05)


SAMPLER_SIGMAS = linear_quadratic_schedule(SAMPLER_DEFAULTS["num_inference_steps"])
"""The sigmas the exported model is sampled at: ``LTXConditionPipeline``'s own schedule, half of whose
steps lie between 1.0 and 0.975, where the layout and every trajectory are decided."""

SIGMA_MIX = (0.6, 0.2, 0.2)
"""Shares of logit-normal, uniform and sampler-schedule sigmas in a batch. With 80 % logit-normal and
20 % uniform alone, 0.5 % of training falls in [0.975, 1] where the sampler spends 10 of its 20 steps,
and a model trained so makes its late frames a function of their own noise (the same seed draws the
same late frames whatever the motion word or first frame asks for)."""


def sample_sigmas(generator: torch.Generator, batch: int) -> torch.Tensor:
    """Logit-normal sigmas (most weight mid-way, as SD3/LTX train), uniform ones, and the sampler's own."""
    logit = torch.sigmoid(torch.randn(batch, generator=generator))
    uniform = torch.rand(batch, generator=generator)
    scheduled = SAMPLER_SIGMAS[torch.randint(len(SAMPLER_SIGMAS), (batch,), generator=generator)]
    pick = torch.rand(batch, generator=generator)
    sigma = torch.where(pick < SIGMA_MIX[0], logit, torch.where(pick < SIGMA_MIX[0] + SIGMA_MIX[1], uniform, scheduled))
    return sigma.clamp(1e-3, 1.0)


def video_coords(batch: int, frames: int, height: int, width: int, frame_index: int = 0,
                 patch: int = TRANSFORMER_PATCH) -> torch.Tensor:
    """RoPE positions of the tokens of a ``frames x height x width`` latent, as the pipeline computes them."""
    ids = LTXConditionPipeline._prepare_video_ids(batch, frames, height, width, patch, 1, device="cpu")
    ids = LTXConditionPipeline._scale_video_ids(ids, SPATIAL_RATIO, TEMPORAL_RATIO, frame_index, device="cpu").float()
    ids[:, 0] = ids[:, 0] / NATIVE.fps
    return ids


def pack(latents: torch.Tensor, patch: int = TRANSFORMER_PATCH) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, tokens, C * patch**2): the pipeline's own packing, so token order matches."""
    return LTXConditionPipeline._pack_latents(latents, patch, 1)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The rectified-flow path the pipeline samples along: sigma=1 is pure noise, 0 is data."""
    return sigma * noise + (1 - sigma) * x0


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the transformer learns to predict (the pipeline steps along ``-prediction``)."""
    return noise - x0


def extra_condition(data: LatentBatch, mode: str) -> tuple[torch.Tensor, int] | None:
    """The latents the pipeline prepends as extra tokens for ``mode``, and the pixel frame they sit at.

    An end keyframe is one frame at the last index; a reverse-extend clip (``trailing``) is
    ``TAIL_FRAMES`` frames ending there, which the pipeline prepends whole (two latent frames: no more
    than its ``num_prefix_latent_frames``, so nothing is placed in-sequence).
    """
    if mode in ("last", "first_last"):
        return data.last, NATIVE.frames - 1
    if mode == "trailing":
        if data.tail is None:
            raise ValueError("the trailing mode needs a latent cache with tails (rebuild the latents stage)")
        return data.tail, NATIVE.frames - TAIL_FRAMES
    return None


def flow_loss(transformer, text_encoder, tokenizer, data: LatentBatch, mode: str,
              generator: torch.Generator, config: FlowConfig) -> torch.Tensor:
    x0, captions = data.latents, data.captions
    batch, _, frames, height, width = x0.shape
    tokens = tokenizer(captions, padding="max_length", max_length=TEXT_MAX_TOKENS, truncation=True,
                       return_tensors="pt")
    prompt_embeds = text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask)[0]

    sigma = sample_sigmas(generator, batch).view(batch, 1, 1, 1, 1)
    noise = torch.randn(x0.shape, generator=generator)
    noisy = add_noise(x0, noise, sigma)
    cond_frames = torch.zeros(frames, dtype=torch.bool)
    if mode in ("first", "first_last"):
        cond_frames[0] = True
    elif mode == "leading":
        cond_frames[: int(torch.randint(2, frames // 2 + 1, (1,), generator=generator))] = True
    cond_mask5 = cond_frames.view(1, 1, frames, 1, 1).float()
    cond_noise = IMAGE_COND_NOISE_SCALE * torch.randn(x0.shape, generator=generator) * sigma**2
    model_in = torch.where(cond_mask5.bool(), x0 + cond_noise, noisy)

    tokens_in = pack(model_in)
    token_cond = pack(cond_mask5.expand(batch, 1, frames, height, width))[..., 0]
    timestep = torch.minimum(sigma.view(batch, 1) * 1000, (1 - token_cond) * 1000)
    coords = video_coords(batch, frames, height, width)
    extra = 0
    prepended = extra_condition(data, mode)
    if prepended is not None:
        cond, frame_index = prepended
        extra_in = pack(cond + IMAGE_COND_NOISE_SCALE * torch.randn(cond.shape, generator=generator) * sigma**2)
        extra = extra_in.shape[1]
        tokens_in = torch.cat([extra_in, tokens_in], dim=1)
        coords = torch.cat([video_coords(batch, cond.shape[2], height, width, frame_index=frame_index), coords], dim=2)
        timestep = torch.cat([torch.zeros(batch, extra), timestep], dim=1)

    pred = transformer(hidden_states=tokens_in, encoder_hidden_states=prompt_embeds, timestep=timestep,
                       encoder_attention_mask=tokens.attention_mask, video_coords=coords, return_dict=False)[0]
    pred = pred[:, extra:].float()
    target = pack(velocity_target(x0, noise))
    objects = pack(data.objects.unsqueeze(1).float())[..., 0]
    weight = ((1 - token_cond) * (1 + config.object_weight * objects)).unsqueeze(-1)
    return ((pred - target) ** 2 * weight).sum() / (weight.sum() * target.shape[-1]).clamp(min=1)


def make_optimizer(modules: torch.nn.Module, config: FlowConfig) -> torch.optim.AdamW:
    """AdamW with no weight decay on norms, biases and embeddings."""
    decay, no_decay = [], []
    for name, param in modules.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name or "embed" in name else decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.99),
    )


def deepen_checkpoint(path: Path, config: FlowConfig, log: StageLog) -> int:
    """The number of transformer blocks to train: the checkpoint's, deepened first if ``config.layers``
    asks for more. A deepened checkpoint keeps its step count and gets a fresh optimizer (Adam's moments
    for the new blocks do not exist; the old ones re-estimate within a few hundred steps)."""
    state = load_checkpoint(path)
    if state is None:
        return config.layers or TRANSFORMER_LAYERS
    held = block_count(state["model"], prefix="transformer.")
    if config.layers is None or config.layers == held:
        return held
    state["model"] = deepen(state["model"], config.layers, prefix="transformer.")
    state["ema"] = deepen(state["ema"], config.layers, prefix="transformer.")
    state["optimizer"] = None
    save_checkpoint(path, state)
    log.write(event="deepened", step=state["step"], layers_from=held, layers_to=config.layers)
    return config.layers


ROPE_FILE = "rope.json"
"""The position embedding the work dir's flow checkpoint trains with; export copies it to ``dreamreel.json``."""


def trained_rope(work_dir: Path) -> dict[str, float] | None:
    path = work_dir / ROPE_FILE
    return json.loads(path.read_text())["rope"] if path.is_file() else None


def choose_rope(work_dir: Path, requested: str | None, log: StageLog) -> dict[str, float] | None:
    """``requested`` (a key of ``ROPES``), recorded in the work dir, or what the work dir already holds."""
    held = trained_rope(work_dir)
    if requested is None:
        return held
    wanted = ROPES[requested]
    if wanted != held or not (work_dir / ROPE_FILE).is_file():
        (work_dir / ROPE_FILE).write_text(json.dumps({"name": requested, "rope": wanted}) + "\n")
        log.write(event="rope", rope=requested)
    return wanted


def train_flow(work_dir: Path, config: FlowConfig, *, max_hours: float | None = None,
               on_checkpoint=None) -> Path:
    from dreamreel_lab.training.text import load_or_build_tokenizer

    tokenizer = load_or_build_tokenizer(work_dir)
    cache = LatentCache(work_dir / "latents")
    torch.manual_seed(config.seed)
    log = StageLog(work_dir, "flow")
    layers = deepen_checkpoint(work_dir / "flow.pt", config, log)
    rope = choose_rope(work_dir, config.rope, log)
    transformer, text_encoder = make_transformer(layers, rope), make_text_encoder(len(tokenizer))
    modules = torch.nn.ModuleDict({"transformer": transformer, "text_encoder": text_encoder})
    optimizer = make_optimizer(modules, config)
    run = StageRun(work_dir / "flow.pt", log, modules, optimizer, config.ema_decay)
    modules.train()
    bf16 = use_bf16(config.bf16)
    modes, weights = cache.modes(config.conditioning)
    if config.conditioning:
        log.write(event="conditioning", weights=dict(zip(modes, weights, strict=True)))
    losses: list[float] = []
    while run.step < config.steps and not run.out_of_time(max_hours):
        step = run.step
        rng = np.random.default_rng([config.seed, step])
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        data = cache.batch(rng, config.batch_size)
        data = data._replace(captions=["" if rng.random() < config.caption_dropout else c for c in data.captions])
        mode = random.Random(step * 7 + config.seed).choices(modes, weights)[0]
        run.set_lr(lr_at(step, config))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = flow_loss(transformer, text_encoder, tokenizer, data, mode, generator, config)
        run.learn(loss)
        losses.append(loss.item())
        if run.step % config.log_every == 0:
            run.log.write(step=run.step, loss=round(float(np.mean(losses)), 5), lr=lr_at(step, config),
                          hours=round(run.hours, 3))
            losses.clear()
        if run.step % config.checkpoint_every == 0:
            run.save()
            if on_checkpoint is not None:
                on_checkpoint(run.step)
    run.save()
    return run.path
