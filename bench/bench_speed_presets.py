"""Speed presets on the embedded model: what ``balanced`` and ``fast`` (``ray-flash-2``) cost in quality and win
in time against ``quality`` (``ray-2``).

Two measurements, each its own command:

* ``quality`` — a paired comparison on the model's held-out eval (``dreamreel-lab eval``'s scenes, captions and
  seeds): every scene is generated at every preset with the same seed through the service's backend, with the
  preset's steps, step cache and guidance window as the worker applies them (``engine/produce.py``); the world
  analyzer reads each clip's colour, shape, motion, background and camera, and the per-attribute difference
  (preset − quality) is reported with its 95 % confidence interval (paired: per clip the difference is −1, 0 or
  1), beside each preset's PSNR to the ``quality`` clip of the same seed (native frames, what the model made).
  Results are appended per clip to ``--out`` (JSON lines), so a run that stops resumes where it stopped.
* ``speed`` — client-seen seconds through a live ``dreamreel serve`` (one worker, SQLite) with the ``lumaai``
  SDK, ``ray-2`` and ``ray-flash-2`` (and ``speed: balanced``) alternating, warm, ``--repeats`` each.

    .venv/bin/python bench/bench_speed_presets.py quality --scenes 200 --out out/speed_quality.jsonl
    .venv/bin/python bench/bench_speed_presets.py quality --scenes 20 --speeds quality,fast \\
        --speeds-config '{"fast": {"steps_fraction": 0.6}}' --out out/candidate.jsonl   # try a table first
    .venv/bin/python bench/bench_speed_presets.py speed --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dreamreel.config import DEFAULT_MODEL_DIR  # noqa: E402
from dreamreel.core.request import SPEEDS, AspectRatio, GenerationRequest  # noqa: E402
from dreamreel.engine.catalog import embedded_catalog  # noqa: E402
from dreamreel.engine.plan import plan_generation  # noqa: E402
from dreamreel.engine.produce import speed_applied  # noqa: E402
from dreamreel.engine.speed import parse_speeds  # noqa: E402
from dreamreel.media.quality import psnr  # noqa: E402

ATTRIBUTES = ("colour", "shape", "motion", "background", "camera")
EVAL_SEED = 4
"""The held-out scenes' seed: ``dreamreel-lab eval --seed 4``, the model card's evaluation."""
PROMPT = "a red ball bouncing on green grass"


def paired_interval(differences: list[int]) -> tuple[float, float, float]:
    """Mean of per-clip differences and its 95 % normal-approximation interval, in points (percent)."""
    n = len(differences)
    mean = statistics.fmean(differences)
    sd = statistics.stdev(differences) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n) if n else math.inf
    return 100 * mean, 100 * (mean - half), 100 * (mean + half)


def run_quality(args: argparse.Namespace) -> None:
    from dreamreel_lab.training.evaluate import heldout_scenes
    from dreamreel_lab.training.sampler import load_backend
    from dreamreel_lab.world.analyze import analyze_clip, score
    from dreamreel_lab.world.captions import caption

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(row["aspect"], row["index"]) for row in _rows(out)}
    backend = load_backend(Path(args.model_dir))
    entry = embedded_catalog(Path(args.model_dir)).entry("ray-2")
    presets = dict(entry.speeds)
    if args.speeds_config:  # a candidate table, read by the models config's own parser
        presets = dict(parse_speeds(json.loads(args.speeds_config), "--speeds-config", entry.family))
    grid = backend.native_grid()
    scenes = heldout_scenes(args.scenes, EVAL_SEED)
    speeds = [speed for speed in SPEEDS if speed in args.speeds.split(",")]
    with out.open("a") as sink:
        for aspect in args.aspects.split(","):
            for index, scene in enumerate(scenes):
                if (aspect, index) in done:
                    continue
                text = caption(scene, np.random.default_rng([EVAL_SEED, index]))
                request = GenerationRequest(prompt=text, aspect_ratio=AspectRatio(aspect), resolution="540p")
                row: dict[str, object] = {"aspect": aspect, "index": index, "prompt": text}
                frames: dict[str, np.ndarray] = {}
                for speed in speeds:
                    preset = presets[speed]
                    plan = plan_generation(request, grid, seed=EVAL_SEED * 100_000 + index,
                                           steps=preset.steps_for(backend.default_steps),
                                           guidance_scale=backend.default_guidance if preset.guidance is None
                                           else preset.guidance)
                    started = time.perf_counter()
                    with speed_applied(backend.pipe, preset, plan.num_inference_steps) as on_step:
                        frames[speed] = backend.generate(plan, on_step or (lambda *_: None), lambda: False)
                    seconds = time.perf_counter() - started
                    result = score(analyze_clip(frames[speed]), scene)
                    row[speed] = {"seconds": round(seconds, 3), "steps": plan.num_inference_steps,
                                  **{key: bool(result.get(key, False)) for key in ATTRIBUTES}}
                    if speed != "quality" and "quality" in frames:
                        row[speed]["psnr"] = round(float(np.mean(
                            [psnr(a, b) for a, b in zip(frames[speed], frames["quality"], strict=True)])), 2)
                sink.write(json.dumps(row) + "\n")
                sink.flush()
    report_quality(out, speeds)


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def report_quality(path: Path, speeds: list[str]) -> None:
    rows = _rows(path)
    print(f"{len(rows)} clips per preset (`{path}`)\n")
    print("| preset | steps | s per native clip (median) | speed-up | " + " | ".join(ATTRIBUTES) + " |")
    print("|---|---|---|---|" + "---|" * len(ATTRIBUTES))
    base_seconds = statistics.median(row["quality"]["seconds"] for row in rows)
    for speed in speeds:
        seconds = statistics.median(row[speed]["seconds"] for row in rows)
        rates = " | ".join(f"{100 * statistics.fmean(row[speed][key] for row in rows):.1f}" for key in ATTRIBUTES)
        print(f"| {speed} | {rows[0][speed]['steps']} | {seconds:.2f} | {base_seconds / seconds:.2f}x | {rates} |")
    print("\nPaired difference against `quality`, points, mean [95 % interval]; PSNR to `quality`'s frames, dB:\n")
    print("| preset | " + " | ".join(ATTRIBUTES) + " | lowest bound | PSNR mean | PSNR 5th pct | PSNR min |")
    print("|---|" + "---|" * len(ATTRIBUTES) + "---|---|---|---|")
    for speed in speeds:
        if speed == "quality":
            continue
        cells, lows = [], []
        for key in ATTRIBUTES:
            mean, low, high = paired_interval([int(row[speed][key]) - int(row["quality"][key]) for row in rows])
            cells.append(f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]")
            lows.append(low)
        psnrs = [row[speed]["psnr"] for row in rows]
        print(f"| {speed} | " + " | ".join(cells) + f" | {min(lows):+.1f} | {statistics.fmean(psnrs):.1f} | "
              f"{np.percentile(psnrs, 5):.1f} | {min(psnrs):.1f} |")


def run_speed(args: argparse.Namespace) -> None:
    from lumaai import LumaAI
    from tests.conftest import ServerProcess

    cases = [("ray-2", None), ("ray-2", "balanced"), ("ray-flash-2", None)]
    times: dict[str, list[float]] = {_label(*case): [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), model_dir=Path(args.model_dir))
        server.start()
        try:
            client = LumaAI(auth_token="local", base_url=f"{server.url}/dream-machine/v1")
            for case in cases:  # warm: the model loaded, each preset's first clip made
                _clip(client, *case, resolution=args.resolution)
            for _ in range(args.repeats):
                for case in cases:
                    times[_label(*case)].append(_clip(client, *case, resolution=args.resolution))
        finally:
            server.stop()
    base = statistics.median(times[_label(*cases[0])])
    print(f"| {args.resolution} 5 s, client-seen (lumaai SDK, 50 ms polls) | median s | spread s | speed-up |")
    print("|---|---|---|---|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.3f} | {min(values):.3f}..{max(values):.3f} | {base / median:.2f}x |")


def _label(model: str, speed: str | None) -> str:
    return f"`{model}`" + (f" + `speed: {speed}`" if speed else "")


def _clip(client, model: str, speed: str | None, *, resolution: str) -> float:  # noqa: ANN001
    started = time.perf_counter()
    extra = {"seed": 1234} | ({"speed": speed} if speed else {})
    generation = client.generations.create(prompt=PROMPT, model=model, resolution=resolution, duration="5s",
                                           aspect_ratio="16:9", extra_body=extra)
    while generation.state not in ("completed", "failed"):
        time.sleep(0.05)
        generation = client.generations.get(generation.id)
    if generation.state != "completed":
        raise RuntimeError(f"generation failed: {generation.failure_reason}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR))
    sub = parser.add_subparsers(dest="command", required=True)
    quality = sub.add_parser("quality", help="paired quality comparison on the held-out eval")
    quality.add_argument("--scenes", type=int, default=200)
    quality.add_argument("--aspects", default="16:9,9:16")
    quality.add_argument("--speeds", default=",".join(SPEEDS))
    quality.add_argument("--out", default="out/speed_quality.jsonl")
    quality.add_argument("--report", action="store_true", help="only print the table of what --out holds")
    quality.add_argument("--speeds-config", default="",
                         help='a candidate speeds table as JSON, as the models config takes it, e.g. '
                              '\'{"fast": {"steps_fraction": 0.6, "cache": {"kind": "none"}}}\'')
    speed = sub.add_parser("speed", help="client-seen time of each preset through a live server")
    speed.add_argument("--repeats", type=int, default=5)
    speed.add_argument("--resolution", default="540p")
    args = parser.parse_args()
    if args.command == "quality":
        if args.report:
            report_quality(Path(args.out), [s for s in SPEEDS if s in args.speeds.split(",")])
        else:
            run_quality(args)
    else:
        run_speed(args)


if __name__ == "__main__":
    main()
