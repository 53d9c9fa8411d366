"""What the H.264 settings do to a loop's wrap: the embedded model's loop frames, encoded three ways.

Usage: .venv/bin/python bench/bench_loop_codec.py [--model-dir models/embedded] [--seeds 7,8,9,10]

Each seed renders one cross-faded loop (no start image) through the worker's code path up to the
encoder (planner -> backend -> ``engine.assemble``), then encodes those same frames at 960x540 with:
x264's defaults, ``scenecut=0`` (what every clip gets), and the loop settings of
``media.encode.x264_params``. It reports the wrap (|last - first| of the decoded file) and the largest
adjacent step, both over the clip's median adjacent step, and the file size; ``frames`` is the wrap of
the frames before encoding. All three encodes of a seed are of identical frames, so the ratios compare
the codec settings alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dreamreel.core.request import AspectRatio, GenerationRequest, Resolution  # noqa: E402
from dreamreel.engine.assemble import iter_new_part  # noqa: E402
from dreamreel.media import encode  # noqa: E402
from dreamreel.media.probe import read_frames  # noqa: E402

CHOSEN = encode.x264_params
"""The product's settings; the bench swaps ``encode.x264_params`` for each row and puts this back."""

SETTINGS = {
    "x264 defaults": lambda total, loop: "",
    "scenecut=0 (every clip)": lambda total, loop: CHOSEN(total, loop=False),
    "loop settings": lambda total, loop: CHOSEN(total, loop=True),
}


def ratios(frames: np.ndarray) -> tuple[float, float]:
    """(wrap, largest step), each over the median adjacent step."""
    steps = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    wrap = float(np.abs(frames[0].astype(np.float32) - frames[-1].astype(np.float32)).mean())
    median = float(np.median(steps))
    return wrap / median, float(steps.max()) / median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "embedded")
    parser.add_argument("--seeds", default="7,8,9,10")
    args = parser.parse_args()

    from dreamreel.engine.backends.ltx import LTXConditionBackend
    from dreamreel.engine.plan import plan_generation

    backend = LTXConditionBackend(args.model_dir)
    request = GenerationRequest(prompt="a blue ball rolls across a sandy beach", aspect_ratio=AspectRatio("16:9"),
                                resolution=Resolution.P540, loop=True)
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ["frames", *SETTINGS]}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(value) for value in args.seeds.split(",")):
            plan = plan_generation(request, backend.native_grid(), seed=seed, steps=backend.default_steps,
                                   guidance_scale=backend.default_guidance)
            native = backend.generate(plan, lambda *_: None, lambda: False)
            frames = np.stack(list(iter_new_part(native, plan)))
            rows["frames"].append((*ratios(frames), 0.0))
            for name, params in SETTINGS.items():
                encode.x264_params = params  # type: ignore[assignment]
                try:
                    video = encode.encode_frames(iter(frames), Path(tmp) / "loop.mp4", width=960, height=540,
                                                 fps=24, total=len(frames), loop=True)
                finally:
                    encode.x264_params = CHOSEN
                rows[name].append((*ratios(read_frames(video.path)), video.size_bytes / 1e3))
    print(f"model {args.model_dir}, seeds {args.seeds}, medians over seeds")
    print("| encoded with | wrap / median step | per seed | largest step / median | KB |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        table = np.array(values)
        per_seed = ", ".join(f"{v:.2f}" for v in table[:, 0])
        size = f"{np.median(table[:, 2]):.0f}" if name != "frames" else "—"
        print(f"| {name} | {np.median(table[:, 0]):.2f}× | {per_seed} | {np.median(table[:, 1]):.2f}× | {size} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
