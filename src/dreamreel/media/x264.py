"""libx264's presets and the one each speed preset encodes with: names only, so the config reader and the API
(which check a models config's ``x264_preset``) need no PyAV; ``media/encode.py`` encodes with them."""

from __future__ import annotations

LIBX264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                   "placebo")
"""libx264's presets, fastest first; ``preset`` must name one of them (x264 itself would fail only at open)."""

DEFAULT_PRESET = "veryfast"
"""The x264 preset of every encode that names none: CRF 20 at ``veryfast`` (see :func:`encode_mp4`)."""

X264_PRESETS: dict[str, str] = {"quality": "veryfast", "balanced": "veryfast", "fast": "ultrafast"}
"""The libx264 preset of each speed preset (a request's ``speed``), all at CRF 20.

The rule (``bench/bench_encode_presets.py``): a preset may serve a speed preset only if its *worst* frame, not
just its mean, is at SSIM >= 0.98 (luma) to today's ``veryfast`` encode of the same frames; ``fast`` takes the
fastest such preset, ``balanced`` the fastest that also keeps the file within 1.5x today's bytes, ``quality`` keeps
today's encode. Measured on the embedded model's clips at 540p and 720p 5 s, and for ``ultrafast`` also 1080p 9 s
(``docs/benchmarks.md``, "x264 preset per speed preset"), encode seconds and bytes as a share of ``veryfast``'s:
``ultrafast`` 0.27x the seconds, 1.8-2.3x the bytes, SSIM mean 0.995, worst frame 0.993; ``superfast`` 0.7x,
3.2-4.0x, 0.995 / 0.993; ``faster`` 1.6x, 1.3x, 0.996 / 0.995. Every one clears the floor (the clips are smooth
upscales), so bytes decide ``balanced``: ``ultrafast`` (no CABAC, no adaptive quantisation or macroblock tree)
doubles the download, ``superfast`` is both slower and bigger, and ``faster`` is slower; ``balanced`` keeps
``veryfast``.
"""
