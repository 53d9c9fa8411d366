"""Training-step time of the embedded model's VAE and transformer in float32 vs bfloat16 autocast.

Whether bf16 pays depends on the CPU (``src/dreamreel_lab/training/precision.py`` decides at run time);
this measures the real shapes the stages train on, so the ratio in docs/benchmarks.md is the one
that matters.

Usage: .venv/bin/python bench/bench_precision.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dreamreel_lab.training.architecture import LATENT_CHANNELS, TEXT_MAX_TOKENS, make_transformer, make_vae
from dreamreel_lab.training.flow_stage import pack, video_coords
from dreamreel_lab.training.precision import bf16_speedup


def vae_step(vae, bf16: bool) -> None:
    """One VAE training step's compute: 4 clips x 9 frames x 96 x 160, encode + decode + backward."""
    video = torch.randn(4, 3, 9, 96, 160)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        recon = vae.decode(vae.encode(video).latent_dist.mode()).sample
    recon.float().square().mean().backward()


def transformer_step(transformer, bf16: bool) -> None:
    """One flow training step's transformer compute: batch 8, 16:9 latents (11 x 6 x 10 = 660 tokens)."""
    batch, frames, height, width = 8, 11, 6, 10
    tokens = pack(torch.randn(batch, LATENT_CHANNELS, frames, height, width))
    text = torch.randn(batch, TEXT_MAX_TOKENS, transformer.config.caption_channels)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = transformer(hidden_states=tokens, encoder_hidden_states=text,
                          timestep=torch.full((batch, tokens.shape[1]), 500.0),
                          encoder_attention_mask=torch.ones(batch, TEXT_MAX_TOKENS, dtype=torch.long),
                          video_coords=video_coords(batch, frames, height, width), return_dict=False)[0]
    out.float().square().mean().backward()


def timed(step, module, bf16: bool, repeats: int) -> float:
    step(module, bf16)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step(module, bf16)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}; "
          f"precision.py probe (fp32 time / bf16 time): {bf16_speedup():.2f}")
    for name, module, step in (("vae", make_vae(), vae_step), ("transformer", make_transformer(), transformer_step)):
        fp32 = timed(step, module, False, args.repeats)
        bf16 = timed(step, module, True, args.repeats)
        print(f"{name:12s} fp32 {fp32:6.2f} s/step   bf16 {bf16:6.2f} s/step   fp32/bf16 {fp32 / bf16:5.2f}")


if __name__ == "__main__":
    main()
