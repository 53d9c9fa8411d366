"""A sprite sheet of a delivered MP4: a JPEG grid of frames, for scrubbing previews (OpenAI's ``spritesheet``).

Layout (documented in the README, so a player can cut it up): one tile per second of video (at least 1,
at most :data:`MAX_TILES`), tile ``i`` showing the frame at the middle of second ``i`` (the clip's frame
``round((i + 0.5) * fps)``, the last frame for a final partial second); tiles laid left to right, then top
to bottom, :data:`COLUMNS` to a row (fewer when there are fewer tiles); every tile :data:`TILE_WIDTH` px wide
and as high as the video's aspect gives (rounded to even); cells that the last row leaves empty are black.

The frames are read back from the stored MP4 with PyAV (decoded in order once, only the chosen frames
converted), so any generation that has a video has a sheet, whichever dialect or worker made it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import av
from PIL import Image

COLUMNS = 5
TILE_WIDTH = 160
MAX_TILES = 20
JPEG_QUALITY = 85


def sheet_layout(frames: int, fps: float) -> list[int]:
    """The frame index each tile shows: the middle frame of each second (see the module docstring)."""
    if frames <= 0:
        return []
    seconds = max(1, min(MAX_TILES, math.ceil(frames / fps) if fps > 0 else 1))
    return [min(frames - 1, round((i + 0.5) * fps)) for i in range(seconds)]


def tile_size(width: int, height: int) -> tuple[int, int]:
    """A tile's (width, height): :data:`TILE_WIDTH` wide, the video's aspect, an even height of at least 2."""
    return TILE_WIDTH, max(2, round(TILE_WIDTH * height / width / 2) * 2)


def write_spritesheet(video: str | Path, out: str | Path) -> Path:
    """Decode ``video`` and write its sheet to ``out`` as a JPEG (atomically: written beside it, then renamed,
    so concurrent readers and writers see a whole file or none)."""
    tiles = _tiles(Path(video))
    if not tiles:
        raise ValueError(f"{video} has no decodable video frames")
    tw, th = tiles[0].size
    columns = min(COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * tw, rows * th))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * tw, (i // columns) * th))
    final = Path(out)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{id(sheet):x}.tmp")
    try:
        sheet.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _tiles(video: Path) -> list[Image.Image]:
    """The chosen frames, scaled to tiles, in sheet order."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 24.0
        frames = stream.frames or sum(1 for _ in container.decode(stream))  # our MP4s say; others are counted
        width, height = stream.codec_context.width, stream.codec_context.height
    wanted = sheet_layout(frames, fps)
    if not wanted:
        return []
    tw, th = tile_size(width, height)
    chosen: dict[int, Image.Image] = {}
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if index in wanted:
                chosen[index] = frame.to_image(width=tw, height=th).convert("RGB")
            if index >= wanted[-1]:
                break
    last = max(chosen) if chosen else None
    return [chosen.get(i, chosen[last]) for i in wanted] if last is not None else []
