"""Would a negative prompt make text-to-video follow the motion words better?

Classifier-free guidance pushes each step from the unconditional prediction (the empty caption) toward the
caption's. The embedded model's moving objects smear under guidance 6 (model card, ``bench/probe_motion.py``),
and colour, shape and background are in every caption; guiding against a *still* version of the same scene
instead of against nothing would, in principle, push only along the motion words. This probe measures it on
the eval's held-out prompts and seeds (``dreamreel-lab eval``), three ways per prompt:

- ``none``: no negative prompt (the empty caption, as shipped);
- ``still``: the scene's canonical caption with every object staying still (what a prompt rewriter could
  at best produce; the product has no such rewriter);
- any other ``--negatives`` entry: that fixed text for every prompt (a setting a model could ship).

The negative prompt goes to the stock pipeline's ``negative_prompt`` argument; the product never passes
one (neither Luma's, fal's nor the AI/ML API's Ray 2 schema has the field), so this script injects it
around the pipeline call. A bench-only device: no product code takes an override.

Run: ``.venv/bin/python bench/probe_negative_prompt.py --model-dir models/embedded --prompts 40``
(about 6 minutes a variant on one thread for 40 prompts x 16:9 and 9:16). On the shipped model it measures
every negative worse than none (model card).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dreamreel.core.request import AspectRatio, GenerationRequest
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import plan_generation
from dreamreel_lab.training.evaluate import Tally, heldout_scenes, mean_adjacent_difference
from dreamreel_lab.training.sampler import load_backend
from dreamreel_lab.world.analyze import analyze_clip, score
from dreamreel_lab.world.captions import canonical_caption, caption
from dreamreel_lab.world.spec import Scene
from dreamreel_lab.world.vocab import Motion

STILL = "still"
DEFAULT_NEGATIVES = ("none", STILL, "an object stays still, the camera is static")


def negative_for(variant: str, scene: Scene) -> str | None:
    if variant == "none":
        return None
    if variant == STILL:
        return canonical_caption(replace(scene, objects=tuple(replace(o, motion=Motion.STILL) for o in scene.objects)))
    return variant


def with_negative_prompt(backend: LTXConditionBackend, current: dict[str, str | None]) -> None:
    """Make every call of ``backend``'s pipeline class pass ``current["text"]`` as its negative prompt."""
    pipeline_class = type(backend.pipe)
    stock_call = pipeline_class.__call__

    def call(self, *args, **kwargs):
        if current["text"] is not None:
            kwargs["negative_prompt"] = current["text"]
        return stock_call(self, *args, **kwargs)

    pipeline_class.__call__ = call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/embedded"))
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--aspects", default="16:9,9:16")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--negatives", default="|".join(DEFAULT_NEGATIVES),
                        help=f"'|'-separated variants: none, {STILL}, or a fixed negative text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backend = load_backend(args.model_dir)
    current: dict[str, str | None] = {"text": None}
    with_negative_prompt(backend, current)
    grid = backend.native_grid()
    scenes = heldout_scenes(args.prompts, args.seed)
    rows = []
    for variant in args.negatives.split("|"):
        tally, adjacent, started = Tally(), [], time.perf_counter()
        for aspect in args.aspects.split(","):
            for index, scene in enumerate(scenes):
                current["text"] = negative_for(variant, scene)
                text = caption(scene, np.random.default_rng([args.seed, index]))
                request = GenerationRequest(prompt=text, aspect_ratio=AspectRatio(aspect), resolution="540p")
                plan = plan_generation(request, grid, seed=args.seed * 100_000 + index,
                                       steps=backend.default_steps, guidance_scale=backend.default_guidance)
                frames = backend.generate(plan, lambda *_: None, lambda: False)
                tally.add(score(analyze_clip(frames), scene))
                adjacent.append(mean_adjacent_difference(frames))
        rows.append({"negative": variant, **tally.rates(), "adjacent": round(float(np.mean(adjacent)), 3),
                     "seconds": round(time.perf_counter() - started, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n| negative ({tally.count} clips each) | colour | shape | motion | background | camera | adjacent |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cells = " | ".join(f"{row[key] * 100:.1f} %" for key in ("colour", "shape", "motion", "background", "camera"))
        print(f"| {row['negative']} | {cells} | {row['adjacent']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
