"""The GPU check: every family's tiny model, built from its real checkpoint's config, through the engine path.

Run by ``bench/device_check.sh`` on a lent GPU machine (and on the CPU by the test suite, so it cannot rot):
for each committed real config (``src/dreamreel/engine/real_configs``) it builds the tiny random checkpoint,
loads it through the registry on the device in the chosen dtype, plans a small clip the family can make
(a start image where the family needs one) and runs ``Backend.generate``: eagerly, then with the transformer's
repeated blocks compiled (``torch.compile``, regional). It records per-step seconds (median of the steps after
the first), peak device memory, and how far the compiled frames are from the eager ones (as arrays: the GPU
image has no PyAV, so nothing is encoded). Shape bugs of a real checkpoint's layout show here before a
multi-GB download does.

    PYTHONPATH=src python bench/device_check.py --device cuda --dtype bfloat16 --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dreamreel.core.capabilities import FAMILY_NEEDS
from dreamreel.core.conditioning import Control
from dreamreel.core.request import GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.catalog import ModelSpec
from dreamreel.engine.compile import compile_regions
from dreamreel.engine.plan import plan_generation
from dreamreel.engine.registry import load_backend
from dreamreel.engine.tiny_real import build_from_real_config, real_config, real_config_names

LTX2 = "ltx2"
"""The LTX-2 config's name; its tiny builder is its own (``engine/tiny_ltx2.py``)."""


@dataclass
class Row:
    config: str
    family: str
    native: str
    steps: int
    build_s: float
    load_s: float
    eager_step_s: float | None = None
    compiled_step_s: float | None = None
    compile_first_s: float | None = None
    peak_mem_mb: float | None = None
    compiled_vs_eager_max_abs: int | None = None
    error: str | None = None


def family_of(name: str) -> str:
    return LTX2 if name == LTX2 else str(real_config(name)["family"])


def request_for(family: str) -> GenerationRequest:
    """A small clip the family can make: 1 s, with a start (and end) image where it needs them."""
    needs = {control for group in FAMILY_NEEDS.get(family, ()) for control in group[:1]}
    keyframes = None
    if needs:
        image = ImageKeyframe(url="https://example.com/start.png")  # its pixels go to the backend directly
        keyframes = Keyframes(frame0=image if Control.START_IMAGE in needs else None,
                              frame1=image if Control.END_IMAGE in needs else None)
    return GenerationRequest(prompt="a red ball bounces on green grass", resolution="540p", duration_s=1,
                             keyframes=keyframes)


class Clock:
    """Per-step wall times, synchronised with the device so a step's kernels are counted in its own step."""

    def __init__(self, sync: callable) -> None:
        self.sync = sync
        self.marks: list[float] = []

    def __call__(self, step: int, total: int) -> None:
        self.sync()
        self.marks.append(time.perf_counter())

    def step_seconds(self, started: float) -> float:
        times = np.diff([started, *self.marks])
        return float(statistics.median(times[1:] if len(times) > 1 else times))


def run_config(name: str, root: Path, device: str, dtype: str, compile_backend: str | None, steps: int,
               short_side: int | None) -> Row:
    import torch

    family = family_of(name)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    started = time.perf_counter()
    model_dir = build_from_real_config(name, root / name, seed=0)
    row = Row(config=name, family=family, native="", steps=steps, build_s=round(time.perf_counter() - started, 2),
              load_s=0.0)
    try:
        started = time.perf_counter()
        native = (("short_side", short_side),) if short_side else ()
        backend = load_backend(ModelSpec(family=family, path=model_dir, device=device, dtype=dtype, native=native))
        row.load_s = round(time.perf_counter() - started, 2)
        request = request_for(family)
        plan = plan_generation(request, backend.native_grid(), seed=0, steps=steps,
                               guidance_scale=backend.default_guidance)
        row.native = f"{plan.native_width}x{plan.native_height}x{plan.native_frames}"
        pixels = [np.full((c.num_frames, plan.native_height, plan.native_width, 3), 90 + 40 * i, np.uint8)
                  for i, c in enumerate(plan.conditions)]
        if cuda:
            torch.cuda.reset_peak_memory_stats()

        def generate() -> tuple[np.ndarray, float]:
            clock = Clock(sync)
            sync()
            began = time.perf_counter()
            frames = backend.generate(plan, clock, lambda: False, pixels)
            return frames, clock.step_seconds(began)

        eager, row.eager_step_s = generate()
        row.peak_mem_mb = round((torch.cuda.max_memory_allocated() if cuda else
                                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20, 1)
        if compile_backend is not None:
            compile_regions(backend.pipe, backend=compile_backend, dynamic=False)  # the worker's --compile, static
            began = time.perf_counter()
            generate()  # the first call compiles
            row.compile_first_s = round(time.perf_counter() - began, 2)
            compiled, row.compiled_step_s = generate()
            row.compiled_vs_eager_max_abs = int(np.abs(compiled.astype(np.int16) - eager.astype(np.int16)).max())
    except Exception as exc:  # one family's failure must not hide the others' numbers
        row.error = f"{type(exc).__name__}: {exc}"[:500]
        traceback.print_exc()
    return row


def table(rows: list[Row], header: str) -> str:
    lines = [header, "", "| config | family | native WxHxF | steps | load s | eager s/step | compiled s/step | "
             "first compiled call s | peak MiB | compiled vs eager max |diff| | error |", "|" + "---|" * 11]
    for r in rows:
        cells = [r.config, r.family, r.native, r.steps, r.load_s, r.eager_step_s, r.compiled_step_s,
                 r.compile_first_s, r.peak_mem_mb, r.compiled_vs_eager_max_abs, r.error or ""]
        lines.append("| " + " | ".join("" if c is None else (f"{c:.4f}" if isinstance(c, float) and c < 1 else str(c))
                                       for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--configs", nargs="*", help="real config names (default: every one)")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend (the CPU test uses 'eager': graph capture without codegen)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--short-side", type=int, default=None,
                        help="native short side to render at (default: the tiny model's own, a few latent cells)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/device-check")))
    args = parser.parse_args(argv)

    import torch

    names = args.configs or sorted({*real_config_names(), LTX2})
    args.out.mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    header = (f"device check, {device_name}, torch {torch.__version__}, {args.dtype}, {args.steps} steps, "
              f"{time.strftime('%Y-%m-%d')}")
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp:
        for name in names:
            row = run_config(name, Path(tmp), args.device, args.dtype,
                             None if args.no_compile else args.compile_backend, args.steps, args.short_side)
            rows.append(row)
            print(json.dumps(asdict(row)), flush=True)
    (args.out / "device_check.json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    (args.out / "device_check.md").write_text(table(rows, header))
    print(table(rows, header))
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
