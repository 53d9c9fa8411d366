"""Would text-to-video move objects better in two passes: draw the clip, keep its first frame, draw again from it?

Image-to-video from a *rendered* first frame scores motion about twice as often as text-to-video on the
embedded model (``dreamreel-lab eval --first-frame``, model card), so a factorised sampler (text -> first
frame -> image-to-video, the way some published video models split the job) looked like a cheap way to
carry that gain over. This probe measures it on the same held-out prompts and seeds as ``dreamreel-lab eval``:
for each prompt the model draws the clip (that clip is the direct text-to-video result), then draws a
second clip conditioned on the first one's frame 0 (seed + 7), and the world analyzer scores both.

Run: ``.venv/bin/python bench/probe_first_frame_pass.py --model-dir models/embedded --prompts 40``
(about 12 minutes on one thread for 40 prompts x 16:9 and 9:16). It measures no gain on the shipped
model (model card), so the product samples text-to-video in one pass.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dreamreel.core.request import AspectRatio, GenerationRequest
from dreamreel.engine.plan import plan_generation
from dreamreel_lab.training.evaluate import FIRST_FRAME, Tally, heldout_scenes, mean_adjacent_difference, score
from dreamreel_lab.training.sampler import load_backend
from dreamreel_lab.world.analyze import analyze_clip
from dreamreel_lab.world.captions import caption


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/embedded"))
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--aspects", default="16:9,9:16")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backend = load_backend(args.model_dir)
    grid = backend.native_grid()
    steps, guidance = backend.default_steps, backend.default_guidance
    direct, two_pass = Tally(), Tally()
    moved: dict[str, list[float]] = {"direct": [], "two_pass": []}
    started = time.perf_counter()
    for aspect in args.aspects.split(","):
        for index, scene in enumerate(heldout_scenes(args.prompts, args.seed)):
            text = caption(scene, np.random.default_rng([args.seed, index]))
            seed = args.seed * 100_000 + index  # what ``dreamreel-lab eval`` uses for this prompt
            request = GenerationRequest(prompt=text, aspect_ratio=AspectRatio(aspect), resolution="540p")
            plan = plan_generation(request, grid, seed=seed, steps=steps, guidance_scale=guidance)
            first = backend.generate(plan, lambda *_: None, lambda: False)
            request = GenerationRequest(prompt=text, aspect_ratio=AspectRatio(aspect), resolution="540p",
                                        keyframes=FIRST_FRAME)
            plan = plan_generation(request, grid, seed=seed + 7, steps=steps, guidance_scale=guidance)
            second = backend.generate(plan, lambda *_: None, lambda: False, conditions=[first[:1]])
            for tally, frames, key in ((direct, first, "direct"), (two_pass, second, "two_pass")):
                tally.add(score(analyze_clip(frames), scene))
                moved[key].append(mean_adjacent_difference(frames))
    print(json.dumps({"model_dir": str(args.model_dir), "prompts": args.prompts, "aspects": args.aspects,
                      "direct": direct.rates(), "two_pass": two_pass.rates(),
                      "adjacent_frame_difference": {k: round(float(np.mean(v)), 3) for k, v in moved.items()},
                      "seconds": round(time.perf_counter() - started)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
