"""Whether bfloat16 autocast pays on this CPU: measured once per process, not assumed.

On a CPU with native bf16 kernels (AVX-512 BF16 or AMX) bf16 autocast ran the VAE 2.0x and the transformer
1.7x faster than float32. On an AVX2-only CPU (an AMD EPYC without AVX-512) PyTorch falls back to reference
kernels and the same steps ran 20x *slower* (VAE step 1.1 s -> 23 s, transformer step 3.2 s -> 32 s). The VAE
and latent configs default to ``bf16=None``: decide here by timing a conv3d and a matmul in both precisions
(about a second).

Timed on the real workloads once warm (AVX-512 BF16, no AMX; ``bench/bench_precision.py`` times the shipped
shapes): VAE encode 1.8x faster in bf16, but the flow transformer only 1.0x at 128 x 4 and 1.1x at 192 x 6
(batch 8, 660 tokens: too small for the matmuls to dominate). The probe's conv3d speaks for the VAE, so the
flow stage defaults to float32 (``FlowConfig.bf16``).
"""

from __future__ import annotations

import functools
import time

import torch

SPEEDUP_NEEDED = 1.2
"""bf16 must beat float32 by this much to be used: a tie is not worth the lost precision."""


def _seconds(fn, repeats: int = 3) -> float:
    fn()  # warm-up: first calls pick kernels and allocate
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


@functools.cache
def bf16_speedup() -> float:
    """float32 time / bfloat16-autocast time for a small conv3d + linear workload, forward and backward."""
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(32, 32, 3, padding=1)
    linear = torch.nn.Linear(256, 256)
    video = torch.randn(1, 32, 4, 24, 40)
    tokens = torch.randn(512, 256)

    def step(bf16: bool) -> None:
        # enable_grad: the probe may first run inside a no_grad stage (the latent cache encoder).
        with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = conv(video).float().square().mean() + linear(tokens).float().square().mean()
            loss.backward()

    return _seconds(lambda: step(False)) / _seconds(lambda: step(True))


def use_bf16(requested: bool | None) -> bool:
    """``requested`` if given, else bf16 only where it measures ``SPEEDUP_NEEDED`` faster."""
    if requested is not None:
        return requested
    return bf16_speedup() >= SPEEDUP_NEEDED
