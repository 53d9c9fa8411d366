"""H.264 encode time and peak memory per output size, each case in a fresh process (honest peak RSS).

Usage: .venv/bin/python bench/bench_encode.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, tempfile, time
sys.path.insert(0, sys.argv[4])
from tests.unit.test_media import synthetic_clip
from dreamreel.media.encode import encode_mp4
width, height, frames = (int(v) for v in sys.argv[1:4])
native = synthetic_clip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as tmp:
    started = time.perf_counter()
    video = encode_mp4(native, tmp + "/o.mp4", width=width, height=height, fps=24, output_frames=frames)
    elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"s": elapsed, "peak_mb": peak / 1024, "before_mb": before / 1024, "mb": video.size_bytes / 1e6}))
"""

CASES = [(960, 540, 120), (1280, 720, 216), (1920, 1080, 120), (3840, 2160, 120), (3840, 2160, 216)]


def main() -> None:
    rows = []
    for width, height, frames in CASES:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(width), str(height), str(frames), str(ROOT)],
            check=True, capture_output=True, text=True,
        )
        rows.append(((width, height, frames), json.loads(out.stdout.strip().splitlines()[-1])))
    base = rows[0][1]["s"]
    print("| output | encode s | ratio to 960x540x120 | peak RSS MB | all frames as RGB MB | MP4 MB |")
    print("|---|---|---|---|---|---|")
    for (width, height, frames), r in rows:
        full = width * height * 3 * frames / 2**20
        print(f"| {width}x{height}x{frames} | {r['s']:.2f} | {r['s'] / base:.1f}x | {r['peak_mb']:.0f} | "
              f"{full:.0f} | {r['mb']:.2f} |")


if __name__ == "__main__":
    main()
