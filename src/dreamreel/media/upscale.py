"""Re-encode a delivered MP4 at a larger size: the media half of an upscale.

What it does: decodes the source clip frame by frame and streams every frame through the same
libswscale bicubic scaler and libx264 settings as a fresh generation (``media.encode``), at the
same frame count and fps, so the result has exactly the requested size and duration.

What it does not do: add detail. There is no super-resolution model; the source is the delivered
MP4 because it is the one complete record of every kind of generation (an extension's output
includes its source clips, a loop its blend) - the model's native frames are not kept. Memory is
one frame at a time, as in ``media.encode``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from dreamreel.media.audio import read_audio
from dreamreel.media.encode import EncodedVideo, _check_output_size, encode_frames
from dreamreel.media.probe import iter_frames


def first_frame(path: str | Path) -> np.ndarray:
    """The first decoded frame of ``path`` as RGB (for the poster; never decodes the whole clip)."""
    for frame in iter_frames(path):
        return frame
    raise ValueError(f"{path} has no decodable video frames")


def upscale_mp4(
    source: str | Path,
    path: str | Path,
    *,
    width: int,
    height: int,
    fps: int,
    frames: int,
    loop: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
) -> EncodedVideo:
    """Write ``source`` (``frames`` frames at ``fps``) scaled to ``width x height`` to ``path``, atomically.

    ``on_frame(done, total)`` reports progress; raising from it aborts and leaves nothing at ``path``.
    A source with a different frame count is an error (no file is published). ``loop``: the source is a
    loop, coded as one (``media.encode.x264_params``). The source's sound, if it has any, is kept (re-encoded).
    """
    _check_output_size(width, height)  # before anything is created on disk
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return encode_frames(iter_frames(source), path, width=width, height=height, fps=fps, total=frames,
                         loop=loop, on_frame=on_frame, audio=read_audio(source))
