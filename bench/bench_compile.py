"""Regional compilation (``DREAMREEL_COMPILE=regional``, ``engine/compile.py``): its cold cost and its warm gain.

One process loads the model twice: one copy eager, one compiled as a worker compiles it (``compile_loaded``: the
repeated transformer blocks through ``torch.compile``, then the warm-up passes), with a fresh inductor cache, so
the cold number is a first start's (a restarted worker on the same disk reuses the cache and compiles faster).
Then, per case, whole clips (``Backend.generate``: text encoder, every denoising step, VAE decode; no encode) are
timed on the eager and the compiled copy in turn, ``--repeats`` times each, interleaved; the first compiled call
of a case counts the graphs dynamo builds for it (0: the warm-up covered its shape) and is not timed. The compiled
frames are compared with the eager ones at the same seed.

The cases after the first show whether another request shape recompiles: on the embedded model 720p and 9 s
render the same native clip as 540p 5 s (the native grid is fixed; the output is scaled and resampled), so a
1:1 clip (fewer tokens) is added as a shape that really differs.

Usage: flock /tmp/bench.lock .venv/bin/python bench/bench_compile.py [--repeats 5] [--backend inductor]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = "540p:5s:16:9,720p:9s:16:9,540p:5s:1:1"


@dataclass
class Case:
    resolution: str
    duration_s: int
    aspect: str

    @property
    def label(self) -> str:
        return f"{self.resolution} {self.duration_s} s {self.aspect}"


def parse_cases(text: str) -> list[Case]:
    cases = []
    for item in text.split(","):
        resolution, duration, aspect = item.split(":", 2)
        cases.append(Case(resolution, int(duration.removesuffix("s")), aspect))
    return cases


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "embedded")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=6.0)
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--static", action="store_true", help="compile_dynamic=False: one graph per shape")
    parser.add_argument("--cases", default=CASES, help="resolution:duration:aspect, comma-separated; first = base")
    args = parser.parse_args()
    # A fresh inductor cache (before torch is imported): the cold number is a first start's.
    cache = tempfile.TemporaryDirectory(prefix="dreamreel-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name

    import numpy as np
    import torch

    from dreamreel.core.request import GenerationRequest
    from dreamreel.engine.catalog import ModelSpec
    from dreamreel.engine.compile import CompileOptions, compile_loaded, graphs_built
    from dreamreel.engine.model_dir import read_settings
    from dreamreel.engine.plan import plan_generation
    from dreamreel.engine.registry import load_backend
    from dreamreel.media.quality import psnr

    spec = ModelSpec(family=str(read_settings(args.model_dir)["family"]), path=args.model_dir)
    eager = load_backend(spec)
    started = time.perf_counter()
    compiled = load_backend(spec)
    load_s = time.perf_counter() - started
    options = CompileOptions(mode="regional", backend=args.backend, dynamic=not args.static)
    report = compile_loaded(compiled, options)
    assert report is not None
    cold_s = time.perf_counter() - started

    def clip(backend: object, case: Case) -> tuple[np.ndarray, float]:
        request = GenerationRequest(prompt="a red ball bouncing on green grass", resolution=case.resolution,
                                    duration_s=case.duration_s, aspect_ratio=case.aspect)
        plan = plan_generation(request, backend.native_grid(), seed=7, steps=args.steps,
                               guidance_scale=args.guidance)
        began = time.perf_counter()
        frames = backend.generate(plan, lambda step, total: None, lambda: False)
        return frames, time.perf_counter() - began

    rows = []
    for case in parse_cases(args.cases):
        before = graphs_built()
        first_began = time.perf_counter()
        clip(compiled, case)  # not timed as warm: it may compile
        first_s = time.perf_counter() - first_began
        new_graphs = graphs_built() - before
        eager_s, compiled_s, diffs, psnrs = [], [], [], []
        for _ in range(args.repeats):
            plain, seconds = clip(eager, case)
            eager_s.append(seconds)
            fast, seconds = clip(compiled, case)
            compiled_s.append(seconds)
            diffs.append(int(np.abs(fast.astype(np.int16) - plain.astype(np.int16)).max()))
            psnrs.append(psnr(fast, plain))
        rows.append((case, plain.shape, eager_s, compiled_s, new_graphs, first_s, max(diffs), min(psnrs)))

    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout
    print(f"\n{cpu.split(':', 1)[-1].strip() or 'cpu'}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}; {args.model_dir.name}, {args.steps} steps, guidance {args.guidance}, "
          f"backend {args.backend}, dynamic={options.dynamic}, {args.repeats} interleaved repeats\n")
    print(f"Cold: load {load_s:.1f} s + compile and warm-up {report.seconds:.1f} s ({report.passes} warm-up passes, "
          f"{report.graphs} graphs, {len(report.modules)} blocks) = {cold_s:.1f} s\n")
    print("| case | native WxHxF | eager s/clip, median (min–max) | compiled s/clip | eager / compiled | "
          "graphs built by its first compiled call | that call s | max abs diff vs eager | min PSNR dB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, shape, eager_s, compiled_s, new_graphs, first_s, diff, low in rows:
        frames, height, width = shape[0], shape[1], shape[2]
        ratio = statistics.median(eager_s) / statistics.median(compiled_s)
        print(f"| {case.label} | {width}x{height}x{frames} | {spread(eager_s)} | {spread(compiled_s)} | {ratio:.2f}x | "
              f"{new_graphs} | {first_s:.2f} | {diff} | {low:.1f} |")
    cache.cleanup()


if __name__ == "__main__":
    sys.exit(main())
