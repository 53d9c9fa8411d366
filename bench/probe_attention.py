"""Where does each attention head of an embedded model look? Entropy and reach per block and head.

On the step-25,000 embedded model, heads 0 and 2 attend almost uniformly to the whole clip in most
blocks: LTX-Video's rotary position embedding, scaled for 2048-px frames, gives those heads frequency
bands that are blind to (or alias) positions on this model's 16-px cells. This script measures it, so a
run trained with ``--rope grid`` can be compared with one trained on the stock embedding.

Method: render held-out still-camera world clips, encode them with the model's own VAE (posterior mean,
normalised as the pipeline normalises), noise them to ``sigma`` on the rectified-flow path, and run the
transformer once on them with their captions. Every self-attention (``attn1``) gets a processor that
computes the softmax it would compute and records, per head, averaged over queries and clips:

* entropy of the attention row (nats; uniform over ``T`` tokens is ``ln T``),
* mean |Δt| in latent frames and mean |Δs| in latent cells between a query and what it attends to,
  weighted by the attention (uniform attention gives the grid's average distances).

Run: ``.venv/bin/python bench/probe_attention.py --model-dir models/embedded [--model-dir other]``
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import torch
from diffusers.models.transformers.transformer_ltx import LTXVideoAttnProcessor, apply_rotary_emb

from dreamreel.core.request import AspectRatio
from dreamreel_lab.training.data import draw_batch, to_video_tensor
from dreamreel_lab.training.flow_stage import add_noise, pack, video_coords
from dreamreel_lab.training.sampler import load_backend
from dreamreel_lab.training.worlds import world_for


class ProbeProcessor(LTXVideoAttnProcessor):
    """The stock processor, which also accumulates per-head statistics of its self-attention weights."""

    def __init__(self, distances: tuple[torch.Tensor, torch.Tensor]) -> None:
        super().__init__()
        self.dt, self.ds = distances
        self.rows: list[torch.Tensor] = []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        if encoder_hidden_states is None:  # self-attention only: cross-attention reads the prompt
            query = attn.norm_q(attn.to_q(hidden_states))
            key = attn.norm_k(attn.to_k(hidden_states))
            if image_rotary_emb is not None:
                query, key = apply_rotary_emb(query, image_rotary_emb), apply_rotary_emb(key, image_rotary_emb)
            query = query.unflatten(2, (attn.heads, -1)).transpose(1, 2).float()
            key = key.unflatten(2, (attn.heads, -1)).transpose(1, 2).float()
            weights = torch.softmax(query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1]), dim=-1)
            entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1).mean(dim=(0, 2))
            dt = (weights * self.dt).sum(-1).mean(dim=(0, 2))
            ds = (weights * self.ds).sum(-1).mean(dim=(0, 2))
            self.rows.append(torch.stack([entropy, dt, ds], dim=1))  # (heads, 3)
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)

    def summary(self) -> torch.Tensor:
        return torch.stack(self.rows).mean(0)


def token_distances(frames: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """|Δt| (latent frames) and |Δs| (cells) between every pair of tokens, in the pipeline's packing order."""
    f, h, w = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    f, h, w = f.flatten().float(), h.flatten().float(), w.flatten().float()
    dt = (f[:, None] - f[None, :]).abs()
    ds = ((h[:, None] - h[None, :]) ** 2 + (w[:, None] - w[None, :]) ** 2).sqrt()
    return dt, ds


@torch.no_grad()
def probe(model_dir: Path, clips: int, sigma: float, seed: int, aspect: AspectRatio) -> tuple[torch.Tensor, dict]:
    pipe = load_backend(model_dir).pipe  # with the position embedding the model trained with
    allowed = replace(world_for("static-camera", role="heldout"), object_counts=(1,))
    batch = draw_batch(seed, 0, clips, allowed=allowed, aspect=aspect)
    vae = pipe.vae
    x0 = pipe._normalize_latents(vae.encode(to_video_tensor(batch.frames)).latent_dist.mode(),
                                 vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
    b, _, frames, height, width = x0.shape
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    tokens = pack(add_noise(x0, noise, torch.tensor(sigma)))
    prompt_embeds, prompt_mask, _, _ = pipe.encode_prompt(batch.captions, do_classifier_free_guidance=False,
                                                          max_sequence_length=48)
    distances = token_distances(frames, height, width)
    processors = []
    for block in pipe.transformer.transformer_blocks:
        processors.append(ProbeProcessor(distances))
        block.attn1.set_processor(processors[-1])
    pipe.transformer(hidden_states=tokens, encoder_hidden_states=prompt_embeds,
                     timestep=torch.full((b, tokens.shape[1]), sigma * 1000.0), encoder_attention_mask=prompt_mask,
                     video_coords=video_coords(b, frames, height, width), return_dict=False)
    uniform = {"entropy": math.log(tokens.shape[1]), "dt": distances[0].mean().item(), "ds": distances[1].mean().item()}
    return torch.stack([p.summary() for p in processors]), uniform  # (blocks, heads, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, action="append", required=True)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aspect", default="16:9")
    args = parser.parse_args()
    for model_dir in args.model_dir:
        stats, uniform = probe(model_dir, args.clips, args.sigma, args.seed, AspectRatio(args.aspect))
        print(f"\n{model_dir} (sigma {args.sigma}, {args.clips} clips; uniform attention: entropy "
              f"{uniform['entropy']:.2f} nats, |dt| {uniform['dt']:.2f}, |ds| {uniform['ds']:.2f})\n")
        heads = stats.shape[1]
        print("| block | " + " | ".join(f"head {h}: entropy, dt, ds" for h in range(heads)) + " |")
        print("|---" * (heads + 1) + "|")
        for block, row in enumerate(stats):
            print(f"| {block} | " + " | ".join(f"{e:.2f}, {dt:.2f}, {ds:.2f}" for e, dt, ds in row.tolist()) + " |")
        mean = stats.mean(0)
        print("| mean | " + " | ".join(f"{e:.2f}, {dt:.2f}, {ds:.2f}" for e, dt, ds in mean.tolist()) + " |")


if __name__ == "__main__":
    main()
