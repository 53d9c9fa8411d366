"""Render a grid of sample frames (first, middle, last) with their prompts, for the README.

Usage: .venv/bin/python scripts/sample_grid.py --model-dir models/embedded --out docs/samples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dreamreel.core.request import GenerationRequest
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import plan_generation

PROMPTS = (
    "a red ball moves to the right on grass",
    "a yellow star drifts upward in the night sky",
    "the camera pans left over a blue square on the beach",
    "a white triangle slides down over the water",
    "a purple ring grows at sunset",
    "an orange diamond circles on a plain grey background",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/samples.png"))
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    backend = LTXConditionBackend(args.model_dir)
    rows = []
    for index, prompt in enumerate(PROMPTS):
        plan = plan_generation(GenerationRequest(prompt=prompt, resolution="540p"), backend.native_grid(), seed=index,
                               steps=backend.default_steps, guidance_scale=backend.default_guidance)
        frames = backend.generate(plan, lambda *_: None, lambda: False)
        strip = np.concatenate([frames[0], frames[len(frames) // 2], frames[-1]], axis=1)
        image = Image.fromarray(strip).resize((strip.shape[1] * args.scale, strip.shape[0] * args.scale))
        canvas = Image.new("RGB", (image.width, image.height + 18), "white")
        canvas.paste(image, (0, 18))
        ImageDraw.Draw(canvas).text((4, 3), prompt, fill="black")
        rows.append(np.asarray(canvas))
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
