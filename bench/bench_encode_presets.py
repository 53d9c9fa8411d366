"""Which libx264 preset each speed preset encodes with: encode seconds, bytes and SSIM to today's encode.

Real clips from the embedded model (``engine.render.render``, as ``bench_overhead.py`` renders them) at 540p 5 s,
720p 5 s and 1080p 9 s over several prompts and seeds, each encoded by ``media.encode.encode_frames`` at CRF 20
with x264's ``ultrafast``, ``superfast``, ``veryfast`` (today's encode) and ``faster``. Reported per size:

- encode seconds, on the first clip of each size: the presets interleaved (their order rotates every repeat),
  ``--repeats`` times, median and min..max, and the ratio to ``veryfast``'s median;
- bytes, summed over the size's clips;
- SSIM (``media.quality.ssim``: Wang et al., 11x11 Gaussian, on luma, the decoded Y planes as the player gets
  them) of every frame of each preset's encode against the same frame of the ``veryfast`` encode of the same
  frames: the mean over all frames of the size's clips, and the worst frame.

The choice (``media.x264.X264_PRESETS``): a preset meets the quality floor when its worst frame over every clip
and size is at SSIM >= 0.98 to today's encode (the mean then is higher still); ``fast`` takes the fastest preset
that meets it, ``quality`` keeps today's, ``balanced`` the fastest that meets it in at most 1.5x today's bytes.

Timing: run the whole script under ``flock /tmp/bench.lock``; it takes a few minutes on 2 cores (1080p dominates).
On a busy machine, ``--part timing`` (under the lock: the timed clips only) and ``--part quality`` (bytes and SSIM,
no lock needed) run the two halves apart; the choice is printed by a whole run only.

Usage: .venv/bin/python bench/bench_encode_presets.py [--repeats 5] [--part all|timing|quality]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dreamreel.config import DEFAULT_MODEL_DIR  # noqa: E402
from dreamreel.core.request import GenerationRequest  # noqa: E402
from dreamreel.engine.catalog import embedded_catalog  # noqa: E402
from dreamreel.engine.registry import load_backend  # noqa: E402
from dreamreel.engine.render import render  # noqa: E402
from dreamreel.media.encode import DEFAULT_PRESET, encode_frames  # noqa: E402
from dreamreel.media.quality import ssim  # noqa: E402

PRESETS = ("ultrafast", "superfast", "veryfast", "faster")
CRF = 20
FLOOR = 0.98
"""The quality floor (issue 30): SSIM to today's encode of the same frames."""
BALANCED_MAX_BYTES = 1.5
"""``balanced`` spends at most this many times today's bytes: a bigger file is a slower download and more storage."""
CLIPS = (
    ("540p", 5, "a red ball bouncing on green grass", 1234),
    ("540p", 5, "waves rolling onto a sandy beach at sunset", 7),
    ("540p", 5, "a city street at night with moving cars", 42),
    ("720p", 5, "a red ball bouncing on green grass", 1234),
    ("720p", 5, "a forest path with sunlight through the leaves", 99),
    ("1080p", 9, "a red ball bouncing on green grass", 1234),
    ("1080p", 9, "waves rolling onto a sandy beach at sunset", 7),
)


@dataclass
class Clip:
    """One rendered clip's delivered frames (native size: the encoder scales them) and output format."""

    size: str
    frames: list[np.ndarray]
    width: int
    height: int
    fps: int
    encodes: dict[str, Path] = field(default_factory=dict)


@dataclass
class Scores:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PRESETS})
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRESETS, 0))
    ssim: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PRESETS})


def encode(clip: Clip, preset: str, path: Path) -> float:
    started = time.perf_counter()
    encode_frames(iter(clip.frames), path, width=clip.width, height=clip.height, fps=clip.fps,
                  total=len(clip.frames), crf=CRF, preset=preset)
    return time.perf_counter() - started


def luma(path: Path) -> list[np.ndarray]:
    """The decoded Y plane of every frame, as stored (limited range, no conversion)."""
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            plane = frame.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
            planes.append(rows[:, : frame.width].copy())
    return planes


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


def choose(worst: dict[str, float], seconds: dict[str, float], size: dict[str, float]) -> dict[str, str]:
    """The speed presets' x264 presets from the worst-frame SSIM, the median seconds and the bytes (both summed
    over the sizes, today's = 1)."""
    by_speed = sorted(PRESETS, key=lambda p: seconds[p])

    def fastest(max_bytes: float) -> str:
        return next(p for p in by_speed if worst[p] >= FLOOR and size[p] <= max_bytes)

    return {"quality": DEFAULT_PRESET, "balanced": fastest(BALANCED_MAX_BYTES), "fast": fastest(float("inf"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--part", choices=("all", "timing", "quality"), default="all")
    args = parser.parse_args()
    timing, quality = args.part in ("all", "timing"), args.part in ("all", "quality")
    backend = load_backend(embedded_catalog(args.model_dir).entry("ray-2").spec)
    clips: list[Clip] = []
    firsts = list({clip[:2]: clip for clip in reversed(CLIPS)}.values())[::-1]  # the first clip of each size
    wanted = CLIPS if quality else firsts
    for resolution, duration, prompt, seed in wanted:
        request = GenerationRequest(prompt=prompt, resolution=resolution, duration_s=duration, seed=seed)
        rendered = render(backend, request, seed=seed, sources=None, on_step=lambda *_: None,
                          should_cancel=lambda: False)
        clips.append(Clip(f"{resolution} {duration} s", list(rendered.frames), rendered.width, rendered.height,
                          rendered.fps))
    sizes = list(dict.fromkeys(clip.size for clip in clips))
    scores = {size: Scores() for size in sizes}
    with tempfile.TemporaryDirectory(prefix="dreamreel-presets-") as tmp:
        folder = Path(tmp)
        for index, clip in enumerate(clips):
            clip.encodes = {preset: folder / f"{index}-{preset}.mp4" for preset in PRESETS}
        timed = [next(clip for clip in clips if clip.size == size) for size in sizes]
        for clip in timed if timing else []:  # warm: first encode of each size out of the numbers
            encode(clip, DEFAULT_PRESET, folder / "warm.mp4")
        for repeat in range(args.repeats if timing else 0):
            for clip in timed:
                order = PRESETS[repeat % len(PRESETS):] + PRESETS[: repeat % len(PRESETS)]
                for preset in order:
                    scores[clip.size].seconds[preset].append(encode(clip, preset, clip.encodes[preset]))
        for clip in clips if quality else []:
            for preset in PRESETS:
                if not clip.encodes[preset].exists():
                    encode(clip, preset, clip.encodes[preset])
                scores[clip.size].bytes[preset] += clip.encodes[preset].stat().st_size
            reference = luma(clip.encodes[DEFAULT_PRESET])
            with ThreadPoolExecutor(2) as pool:  # numpy lets go of the GIL on whole-frame arithmetic
                for preset in PRESETS:
                    frames = luma(clip.encodes[preset])
                    if len(frames) != len(reference):
                        raise RuntimeError(f"{preset} decoded {len(frames)} frames, veryfast {len(reference)}")
                    scores[clip.size].ssim[preset] += pool.map(ssim, frames, reference)
            print(f"scored {clip.size} ({len(clip.frames)} frames)", file=sys.stderr, flush=True)

    print(f"CRF {CRF}; seconds: first clip of each size, {args.repeats if timing else 0} repeats, presets "
          f"interleaved; bytes and SSIM: {len(clips) if quality else 0} clips (luma, every frame, against the veryfast "
          f"encode of the same frames)\n")
    print("| size | x264 preset | encode s median (min..max) | / veryfast | bytes | / veryfast | SSIM mean | "
          "SSIM worst frame |")
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        s = scores[size]
        for preset in PRESETS:
            if timing:
                med, base_s = statistics.median(s.seconds[preset]), statistics.median(s.seconds[DEFAULT_PRESET])
                seconds = f"{med:.2f} ({spread(s.seconds[preset])}) | {med / base_s:.2f}"
            else:
                seconds = "- | -"
            if quality:
                measured = (f"{s.bytes[preset]:,} | {s.bytes[preset] / s.bytes[DEFAULT_PRESET]:.2f} | "
                            f"{statistics.fmean(s.ssim[preset]):.4f} | {min(s.ssim[preset]):.4f}")
            else:
                measured = "- | - | - | -"
            print(f"| {size} | {preset} | {seconds} | {measured} |")
    if not (timing and quality):
        return
    total_s = {p: sum(statistics.median(scores[size].seconds[p]) for size in sizes) for p in PRESETS}
    worst = {p: min(min(scores[size].ssim[p]) for size in sizes) for p in PRESETS}
    mean = {p: statistics.fmean([v for size in sizes for v in scores[size].ssim[p]]) for p in PRESETS}
    total_bytes = {p: sum(scores[size].bytes[p] for size in sizes) for p in PRESETS}
    size = {p: total_bytes[p] / total_bytes[DEFAULT_PRESET] for p in PRESETS}
    print("\n| x264 preset | median s, all sizes | / veryfast | bytes / veryfast | SSIM mean | SSIM worst frame | "
          "worst >= 0.98 |")
    print("|---|---|---|---|---|---|---|")
    for preset in PRESETS:
        print(f"| {preset} | {total_s[preset]:.2f} | {total_s[preset] / total_s[DEFAULT_PRESET]:.2f} | "
              f"{size[preset]:.2f} | {mean[preset]:.4f} | {worst[preset]:.4f} | "
              f"{'yes' if worst[preset] >= FLOOR else 'no'} |")
    print(f"\nchoice: {choose(worst, total_s, size)}")


if __name__ == "__main__":
    main()
