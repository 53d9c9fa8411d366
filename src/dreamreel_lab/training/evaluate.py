"""``dreamreel-lab eval``: prompt adherence of a model directory, measured by the world analyzer.

Held-out scenes (colour x shape x motion combinations never seen in training) are captioned,
generated through the production backend (``LTXConditionBackend``: the same code path the server
runs, with the lab's experiment settings on top, ``sampler``), and analysed; the same analyzer on
the rendered ground truth gives its own accuracy.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dreamreel.core.request import AspectRatio, GenerationRequest, ImageKeyframe, Keyframes
from dreamreel.engine.plan import plan_generation
from dreamreel.media.quality import psnr
from dreamreel_lab.training.sampler import guidance_interval, load_backend
from dreamreel_lab.training.worlds import world_for
from dreamreel_lab.world.analyze import analyze_clip, score
from dreamreel_lab.world.captions import caption
from dreamreel_lab.world.draw import draw_scene
from dreamreel_lab.world.spec import Scene, sample_scene

ATTRIBUTES = ("colour", "shape", "motion", "background", "camera")


@dataclass
class Tally:
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ATTRIBUTES, 0))
    count: int = 0

    def add(self, result: dict[str, bool]) -> None:
        self.count += 1
        for key in ATTRIBUTES:
            self.hits[key] += bool(result.get(key, False))

    def rates(self) -> dict[str, float]:
        return {key: round(self.hits[key] / max(1, self.count), 4) for key in ATTRIBUTES}


@dataclass
class Confusion:
    """Per asked-for word, how often each word was read back: where a model's misses go.

    Only one-object scenes are tallied (the eval's), so "asked" and "read" pair up unambiguously;
    a clip in which no object was found reads ``"none"``."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, asked: str, read: str) -> None:
        row = self.counts.setdefault(asked, {})
        row[read] = row.get(read, 0) + 1

    def table(self) -> dict[str, dict[str, int]]:
        return {asked: dict(sorted(row.items(), key=lambda item: -item[1]))
                for asked, row in sorted(self.counts.items())}


def heldout_scenes(count: int, seed: int, world: str = "full") -> list[Scene]:
    allowed = replace(world_for(world, role="heldout"), object_counts=(1,))
    rng = np.random.default_rng([seed, 99])
    return [sample_scene(rng, allowed=allowed) for _ in range(count)]


def mean_adjacent_difference(frames: np.ndarray) -> float:
    return float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean())


FIRST_FRAME = Keyframes(frame0=ImageKeyframe(url="rendered:first-frame"))
"""The keyframes an image-to-video request would carry; the planner needs only their kinds (the
pixels, the scene's own rendered first frame, are handed to the backend directly)."""


def evaluate(model_dir: Path, *, prompts: int, aspects: tuple[str, ...], seed: int = 0, steps: int | None = None,
             world: str = "full", guidance: float | None = None, first_frame: bool = False,
             guidance_min_sigma: float | None = None) -> dict[str, object]:
    """``steps``/``guidance`` override the model's sampler defaults (``dreamreel.json``), to choose them;
    ``guidance_min_sigma`` > 0 guides only the steps at or above that noise level (``sampler.guidance_interval``;
    ``None`` or 0: every step).

    ``first_frame`` starts every clip from the scene's rendered first frame (image-to-video). The
    layout is then given, so what is left to score is whether the model *moves* things as asked:
    a diagnostic that tells a model that cannot place one object from one that cannot move it."""
    backend = load_backend(model_dir)
    steps = steps or backend.default_steps
    guidance = backend.default_guidance if guidance is None else guidance
    guidance_min_sigma = guidance_min_sigma or 0.0
    grid = backend.native_grid()
    scenes = heldout_scenes(prompts, seed, world)
    model, truth = Tally(), Tally()
    motion_read, camera_read = Confusion(), Confusion()
    model_motion, truth_motion, seconds, first_psnr = [], [], [], []
    for aspect in aspects:
        for index, scene in enumerate(scenes):
            text = caption(scene, np.random.default_rng([seed, index]))
            request = GenerationRequest(prompt=text, aspect_ratio=AspectRatio(aspect), resolution="540p",
                                        keyframes=FIRST_FRAME if first_frame else None)
            plan = plan_generation(request, grid, seed=seed * 100_000 + index,
                                   steps=steps, guidance_scale=guidance)
            rendered = draw_scene(scene, plan.native_width, plan.native_height, plan.native_frames, fps=grid.fps)
            started = time.perf_counter()
            frames = backend.generate(plan, guidance_interval(backend, plan, guidance_min_sigma), lambda: False,
                                      conditions=[rendered[:1]] if first_frame else ())
            seconds.append(time.perf_counter() - started)
            analysis = analyze_clip(frames)
            model.add(score(analysis, scene))
            read_motion = str(analysis.objects[0].motion) if analysis.objects else "none"
            motion_read.add(str(scene.objects[0].motion), read_motion)
            camera_read.add(str(scene.camera), str(analysis.camera))
            truth.add(score(analyze_clip(rendered), scene))
            model_motion.append(mean_adjacent_difference(frames))
            if first_frame:
                first_psnr.append(psnr(frames[0], rendered[0]))
            truth_motion.append(mean_adjacent_difference(rendered))
    return {
        "model_dir": str(model_dir),
        "prompts": prompts,
        "aspects": list(aspects),
        "sampler": {"steps": steps, "guidance_scale": guidance, "guidance_min_sigma": guidance_min_sigma},
        "first_frame": first_frame,
        "model": model.rates(),
        "analyzer_on_ground_truth": truth.rates(),
        "adjacent_frame_difference": {"model": round(float(np.mean(model_motion)), 3),
                                      "rendered": round(float(np.mean(truth_motion)), 3)},
        "seconds_per_clip_native": round(float(np.median(seconds)), 3),
        "motion_read_as": motion_read.table(),
        "camera_read_as": camera_read.table(),
        **({"first_frame_psnr": round(float(np.mean(first_psnr)), 2)} if first_frame else {}),
    }


def main_eval(model_dir: Path, prompts: int, aspects: str, out: Path | None, steps: int | None, world: str,
              guidance: float | None = None, first_frame: bool = False, seed: int = 0,
              guidance_min_sigma: float | None = None) -> int:
    result = evaluate(model_dir, prompts=prompts, aspects=tuple(aspects.split(",")), steps=steps, world=world,
                      guidance=guidance, first_frame=first_frame, seed=seed, guidance_min_sigma=guidance_min_sigma)
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return 0
