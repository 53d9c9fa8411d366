"""How well a model honours the conditioning controls: keyframe PSNR, extension seams, loop seams.

Usage: .venv/bin/python bench/bench_controls.py [--model-dir models/tiny-ltx] [--seeds 7,8,9,10] [--json out.json]

Runs the same code path as the worker (``engine.render`` -> ``media.encode.encode_clip``), in-process, on a
synthetic keyframe picture, and reads the delivered MP4s back with PyAV. Targets (issue #5):
keyframe PSNR >= 25 dB (the delivered first/last frame, shrunk to the model's native size, against the
fitted keyframe at that size); a seam (extend/reverse-extend joint) <= 2x the clip's median
adjacent-frame difference; a loop's |last - first| <= 1.5x it. ``frame0_zoom_in`` is
image-to-video from a still of a world scene with the ``zoom_in`` concept: it must still start on the
image, and the analyzer should measure a zoom (a third of the world's nominal one) on the delivered
frames at native size and rate.

The product joins a clip's ends onto what they meet (``media/seam.py``): an extension onto its source
clip's joint frame, and the first/last frame onto the keyframe image, the correction
fading over a second. So the delivered keyframe PSNR says what a user gets; ``model_psnr_*_db`` says what
the model itself drew there (its native frame before the join), and ``step_ratio`` is the step out of the
image (frame 0 -> 1, or into it at the end) over the clip's median step, which a join must keep small;
``model_step_ratio`` is the same for the model's own native frames (its first or last step over its median).

Each seed is one clip per control; with several ``--seeds`` every number is reported per seed and as the
median, and a control passes on its median (one clip is a noisy sample of a model's behaviour).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dreamreel.core.request import (  # noqa: E402
    AspectRatio,
    GenerationKeyframe,
    GenerationRequest,
    ImageKeyframe,
    Keyframes,
    Resolution,
)
from dreamreel.engine.inputs import ImageSources  # noqa: E402
from dreamreel.engine.render import render  # noqa: E402
from dreamreel.media.encode import encode_clip  # noqa: E402
from dreamreel.media.images import decode_image, fit_to_aspect  # noqa: E402
from dreamreel.media.probe import read_frames  # noqa: E402
from dreamreel.media.quality import psnr  # noqa: E402
from dreamreel_lab.world.analyze import analyze_clip  # noqa: E402

PSNR_TARGET_DB = 25.0
SEAM_RATIO = 2.0
LOOP_RATIO = 1.5
ZOOM_READ = 0.3
"""A zoom the world analyzer would name: a third of the world's nominal zoom (``world.camera_motion``)."""


def keyframe_picture(colour: tuple[int, int, int], size: tuple[int, int] = (640, 400)) -> bytes:
    """A picture with structure (gradient, shapes) so PSNR is not a flat-colour artefact."""
    x = np.linspace(0, 1, size[0])[None, :, None]
    y = np.linspace(0, 1, size[1])[:, None, None]
    base = (np.array(colour)[None, None, :] * (0.5 + 0.5 * x) * (0.7 + 0.3 * y)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] * 0.2, size[1] * 0.3, size[0] * 0.45, size[1] * 0.7), fill=(240, 240, 240))
    draw.rectangle((size[0] * 0.6, size[1] * 0.2, size[0] * 0.85, size[1] * 0.5), fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def world_picture(size: tuple[int, int] = (640, 384)) -> bytes:
    """A still of a held-out world scene (the analyzer reads camera moves over the world's scenery)."""
    from dataclasses import replace

    from dreamreel_lab.training.evaluate import heldout_scenes
    from dreamreel_lab.world.draw import draw_scene
    from dreamreel_lab.world.vocab import Camera

    scene = replace(heldout_scenes(1, 0)[0], camera=Camera.STATIC)
    buffer = io.BytesIO()
    Image.fromarray(draw_scene(scene, size[0], size[1], 1)[0]).save(buffer, "PNG")
    return buffer.getvalue()


class BenchInputs(ImageSources):
    """The engine's keyframe sources, with images and source clips from memory/disk (as the worker's come from
    its store)."""

    def __init__(self, images: dict[str, bytes], clips: dict[str, Path]) -> None:
        super().__init__()
        self.images, self.clips = images, clips

    def image_bytes(self, url: str, slot: str) -> bytes:
        return self.images[url]

    def source_path(self, request: GenerationRequest, slot: str) -> Path:
        return self.clips[getattr(request.keyframes, slot).id]


def shrink(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC))


def adjacent(frames: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


def seam(frames: np.ndarray, at: int) -> tuple[float, float]:
    """(|frame[at] - frame[at-1]|, median adjacent difference) over the whole clip."""
    step = float(np.abs(frames[at].astype(np.float32) - frames[at - 1].astype(np.float32)).mean())
    return step, float(np.median(adjacent(frames)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "tiny-ltx")
    parser.add_argument("--seeds", default="7", help="comma-separated seeds; each runs every control once")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from dreamreel.engine.backends.ltx import LTXConditionBackend

    backend = LTXConditionBackend(args.model_dir)
    native: list[np.ndarray] = []  # the model's own frames of the latest clip, before assembly and joins
    generate = backend.generate

    def recording_generate(*args, **kwargs) -> np.ndarray:
        native[:] = [generate(*args, **kwargs)]
        return native[0]

    backend.generate = recording_generate  # type: ignore[method-assign]
    images = {"start": keyframe_picture((40, 90, 230)), "end": keyframe_picture((230, 120, 30)),
              "scene": world_picture()}
    out_dir = Path(tempfile.mkdtemp(prefix="bench-controls-"))
    clips: dict[str, Path] = {}

    grid = backend.native_grid()
    start_img, end_img = ImageKeyframe(url="start"), ImageKeyframe(url="end")

    def fitted(key: str, plan) -> np.ndarray:
        return fit_to_aspect(decode_image(images[key]), plan.native_width, plan.native_height)

    def measure(seed: int) -> dict[str, dict[str, float]]:
        """Every control once at ``seed``; the clips land in ``out_dir/<seed>-<control>.mp4``."""
        results: dict[str, dict[str, float]] = {}

        def run(name: str, keyframes: Keyframes | None = None, loop: bool = False,
                concepts: tuple[str, ...] = ()) -> tuple[np.ndarray, object]:
            request = GenerationRequest(prompt="a blue ball rolls across a sandy beach",
                                        aspect_ratio=AspectRatio("16:9"), resolution=Resolution.P540,
                                        keyframes=keyframes, loop=loop, concepts=concepts)
            path = out_dir / f"{seed}-{name}.mp4"
            clip = render(backend, request, seed=seed, on_step=lambda *_: None, should_cancel=lambda: False,
                          sources=BenchInputs(images, clips))  # one per job, as the worker makes them
            encode_clip(clip, path)
            clips[name] = path
            return read_frames(path), clip.plan

        frames, plan = run("frame0", Keyframes(frame0=start_img))
        w, h = plan.native_width, plan.native_height
        step, median = seam(frames, 1)
        model_steps = adjacent(native[0])
        results["frame0"] = {"psnr_first_db": psnr(shrink(frames[0], w, h), fitted("start", plan)),
                             "model_psnr_first_db": psnr(native[0][0], fitted("start", plan)),
                             "step_ratio": step / median,
                             "model_step_ratio": float(model_steps[0] / np.median(model_steps))}
        # image-to-video with a push in: a virtual camera's zoom starts on the whole frame, so on a model
        # with ``camera_moves: virtual`` the clip still starts on the image and then zooms (media/camera.py)
        frames, plan = run("frame0_zoom_in", Keyframes(frame0=ImageKeyframe(url="scene")), concepts=("zoom_in",))
        step, median = seam(frames, 1)
        native_rate = frames[:: plan.source_stride]
        motion = analyze_clip(np.stack([shrink(frame, w, h) for frame in native_rate])).camera_motion
        results["frame0_zoom_in"] = {"psnr_first_db": psnr(shrink(frames[0], w, h), fitted("scene", plan)),
                                     "step_ratio": step / median, "zoom": float(motion.zoom) if motion else 0.0,
                                     "virtual_camera": float(plan.camera_move == "zoom_in")}
        frames, plan = run("frame1", Keyframes(frame1=end_img))
        step, median = seam(frames, len(frames) - 1)
        model_steps = adjacent(native[0])
        results["frame1"] = {"psnr_last_db": psnr(shrink(frames[-1], w, h), fitted("end", plan)),
                             "model_psnr_last_db": psnr(native[0][-1], fitted("end", plan)),
                             "step_ratio": step / median,
                             "model_step_ratio": float(model_steps[-1] / np.median(model_steps))}
        frames, plan = run("interpolate", Keyframes(frame0=start_img, frame1=end_img))
        mid = shrink(frames[len(frames) // 2], w, h).astype(np.float32)
        results["interpolate"] = {
            "psnr_first_db": psnr(shrink(frames[0], w, h), fitted("start", plan)),
            "psnr_last_db": psnr(shrink(frames[-1], w, h), fitted("end", plan)),
            "model_psnr_first_db": psnr(native[0][0], fitted("start", plan)),
            "model_psnr_last_db": psnr(native[0][-1], fitted("end", plan)),
            "middle_vs_first_mad": float(np.abs(mid - fitted("start", plan)).mean()),
            "middle_vs_last_mad": float(np.abs(mid - fitted("end", plan)).mean()),
        }

        source, _ = run("source")
        frames, _ = run("extend", Keyframes(frame0=GenerationKeyframe(id="source")))
        step, median = seam(frames, len(source))
        results["extend"] = {"seam": step, "median_adjacent": median, "ratio": step / median,
                             "source_part_psnr_db": psnr(frames[: len(source)], source)}
        frames, _ = run("reverse_extend", Keyframes(frame1=GenerationKeyframe(id="source")))
        new = len(frames) - len(source)
        step, median = seam(frames, new)
        results["reverse_extend"] = {"seam": step, "median_adjacent": median, "ratio": step / median}

        for name, keyframes in (("loop_blend", None), ("loop_on_image", Keyframes(frame0=start_img))):
            frames, plan = run(name, keyframes, loop=True)
            wrap = float(np.abs(frames[0].astype(np.float32) - frames[-1].astype(np.float32)).mean())
            median = float(np.median(adjacent(frames)))
            results[name] = {"wrap": wrap, "median_adjacent": median, "ratio": wrap / median}
            if keyframes is not None:
                results[name]["psnr_first_db"] = psnr(shrink(frames[0], w, h), fitted("start", plan))

        return results

    seeds = [int(value) for value in args.seeds.split(",")]
    per_seed = {seed: measure(seed) for seed in seeds}
    results = {name: {metric: float(np.median([per_seed[seed][name][metric] for seed in seeds]))
                      for metric in values} for name, values in per_seed[seeds[0]].items()}
    print(f"model {args.model_dir} native grid {grid} seeds {seeds} (medians); outputs in {out_dir}")
    checks = {
        "frame0": results["frame0"]["psnr_first_db"] >= PSNR_TARGET_DB,
        "frame1": results["frame1"]["psnr_last_db"] >= PSNR_TARGET_DB,
        "interpolate": min(results["interpolate"]["psnr_first_db"], results["interpolate"]["psnr_last_db"])
        >= PSNR_TARGET_DB,
        "extend": results["extend"]["ratio"] <= SEAM_RATIO,
        "reverse_extend": results["reverse_extend"]["ratio"] <= SEAM_RATIO,
        "loop_blend": results["loop_blend"]["ratio"] <= LOOP_RATIO,
        "loop_on_image": results["loop_on_image"]["ratio"] <= LOOP_RATIO,
        "frame0_zoom_in": results["frame0_zoom_in"]["psnr_first_db"] >= PSNR_TARGET_DB
        and results["frame0_zoom_in"]["zoom"] >= ZOOM_READ,
    }
    for name, values in results.items():
        text = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"{name:15s} {'PASS' if checks.get(name) else 'MISS'}  {text}")
        if len(seeds) > 1:
            key = "ratio" if "ratio" in values else next(iter(values))
            print(f"{'':20s} {key} per seed: " + ", ".join(f"{per_seed[seed][name][key]:.2f}" for seed in seeds))
    if args.json:
        passed = {name: bool(ok) for name, ok in checks.items()}
        args.json.write_text(json.dumps({"seeds": seeds, "results": results, "per_seed": per_seed, "pass": passed},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
