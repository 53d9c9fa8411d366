"""Camera-concept adherence: does a concept move the camera the way the world analyzer reads it?

For every supported concept, held-out scenes (colour x shape combinations never trained on) are
described without any camera words, the concept is applied exactly as the server applies it
(``engine.plan``: the caption clause appended to the prompt, or, where a virtual camera makes the move,
a still-camera clause), the clip is generated
through the production backend and planner, and ``dreamreel_lab.world.analyze`` reads the camera move back from
the frames. The analyzer on the rendered ground truth of the same scenes is its own ceiling; chance
is 1/9 (nine camera moves).

Two readings per clip: the delivered new part (``engine.assemble.new_part``, at native size and fps:
what the encoder resamples and upscales), which includes the virtual camera of a model whose
``camera_moves`` is ``virtual`` (``media/camera.py``), and the model's own frames before it.

Usage: .venv/bin/python bench/bench_concepts.py --model-dir models/tiny-ltx [--per-concept 4] [--steps N]
       [--prompt-camera planner|concept]

Each concept and scene has its own seed.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from dreamreel.core.concepts import CONCEPTS, conditioned_prompt
from dreamreel.core.request import GenerationRequest
from dreamreel.engine.assemble import new_part
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.plan import plan_generation
from dreamreel_lab.training.evaluate import heldout_scenes
from dreamreel_lab.world.analyze import analyze_clip
from dreamreel_lab.world.captions import CAMERA_PHRASES, canonical_caption
from dreamreel_lab.world.draw import draw_scene
from dreamreel_lab.world.vocab import Camera


def description(scene) -> str:
    """The scene's canonical caption without its camera clause (the concept supplies that)."""
    text = canonical_caption(replace(scene, camera=Camera.STATIC))
    suffix = f", {CAMERA_PHRASES[Camera.STATIC][0]}"
    assert text.endswith(suffix), text
    return text[: -len(suffix)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/tiny-ltx"))
    parser.add_argument("--per-concept", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt-camera", choices=["planner", "concept"], default="planner",
                        help="planner: the prompt the server sends (a still camera under a virtual one); "
                             "concept: the concept's own words even under a virtual camera")
    args = parser.parse_args()

    backend = LTXConditionBackend(args.model_dir)
    grid = backend.native_grid()
    scenes = heldout_scenes(args.per_concept, args.seed)
    rows, hits, model_hits, truth_hits, total, seconds = [], 0, 0, 0, 0, []
    for position, (key, concept) in enumerate(CONCEPTS.items()):
        expected = Camera(concept.camera)
        read, model_read, truth_read = Counter(), Counter(), Counter()
        for index, base in enumerate(scenes):
            scene = replace(base, camera=expected)
            request = GenerationRequest(prompt=description(scene), resolution="540p", concepts=(key,))
            # a seed per concept and scene: under a virtual camera every concept's prompt asks for a still
            # camera, and one seed per scene would draw the same clip for every concept
            plan = plan_generation(request, grid, seed=args.seed * 100_000 + position * 1_000 + index,
                                   steps=args.steps or backend.default_steps, guidance_scale=backend.default_guidance,
                                   virtual_camera=backend.camera_moves == "virtual")
            if args.prompt_camera == "concept":
                plan = replace(plan, prompt=conditioned_prompt(request.prompt, request.concepts))
            started = time.perf_counter()
            frames = backend.generate(plan, lambda *_: None, lambda: False)
            seconds.append(time.perf_counter() - started)
            read[analyze_clip(new_part(frames, plan)).camera.value] += 1
            model_read[analyze_clip(frames).camera.value] += 1
            rendered = draw_scene(scene, plan.native_width, plan.native_height, plan.native_frames, fps=grid.fps)
            truth_read[analyze_clip(rendered).camera.value] += 1
        n = len(scenes)
        hits += read[expected.value]
        model_hits += model_read[expected.value]
        truth_hits += truth_read[expected.value]
        total += n
        common, count = read.most_common(1)[0]
        rows.append(f"| {key} | {expected.value} | {read[expected.value]}/{n} | {model_read[expected.value]}/{n} "
                    f"| {truth_read[expected.value]}/{n} | {common} ({count}/{n}) |")
    print(f"model: {args.model_dir} (steps {args.steps or backend.default_steps}), {args.per_concept} held-out "
          f"scenes per concept, native {plan.native_width}x{plan.native_height}x{plan.native_frames}, "
          f"median {np.median(seconds):.2f} s per clip, camera_moves {backend.camera_moves}, "
          f"prompt camera {args.prompt_camera}\n")
    print("| concept | expected camera | delivered reads as expected | model's own frames | analyzer on ground truth "
          "| delivered's most common reading |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"| **all** | | **{hits / total:.1%}** ({hits}/{total}) | {model_hits / total:.1%} ({model_hits}/{total}) "
          f"| **{truth_hits / total:.1%}** ({truth_hits}/{total}) | chance 11.1% |")


if __name__ == "__main__":
    main()
