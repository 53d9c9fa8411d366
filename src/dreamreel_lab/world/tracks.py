"""Link per-frame blobs into object tracks, and read each track's colour.

Why link by position instead of by colour: a blurry or colour-shifted object can flicker
between two neighbouring palette labels (orange/yellow) from frame to frame, but it does not
teleport. Tracks are grown greedily, biggest blob first, from the nearest recent end within
a distance that scales with the object's size; only tracks present in most of the clip count
as objects, which drops stars, glints and noise specks. The colour is then read once per
track from the median of its interior pixels (the eroded blob, so the outline is left out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamreel_lab.world.blobs import Blobs
from dreamreel_lab.world.colour_model import nearest_colour
from dreamreel_lab.world.vocab import Background, Colour

MIN_PRESENCE = 0.5
"""A track must appear in at least this fraction of the frames to be an object."""
_MAX_GAP = 4


@dataclass(frozen=True)
class Track:
    """One object's blob (index into :class:`Blobs`) in each frame where it was found."""

    blobs: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.blobs)


def min_blob_area(height: int, width: int) -> float:
    return max(6.0, 0.0008 * height * width)


def link_tracks(blobs: Blobs, frames: int) -> list[Track]:
    """Object tracks, most substantial (total area) first."""
    short = min(blobs.height, blobs.width)
    keep = np.nonzero(blobs.area >= min_blob_area(blobs.height, blobs.width))[0]
    order = keep[np.lexsort((-blobs.area[keep], blobs.frame[keep]))]
    tracks: list[list[int]] = []
    for blob in order:
        frame = blobs.frame[blob]
        best, best_distance = -1, np.inf
        for t, members in enumerate(tracks):
            last = members[-1]
            if blobs.frame[last] == frame or frame - blobs.frame[last] > _MAX_GAP:
                continue
            distance = float(np.hypot(blobs.cx[blob] - blobs.cx[last], blobs.cy[blob] - blobs.cy[last]))
            reach = 0.12 * short + 1.5 * np.sqrt(max(blobs.area[blob], blobs.area[last]))
            if distance < reach and distance < best_distance:
                best, best_distance = t, distance
        if best >= 0:
            tracks[best].append(int(blob))
        else:
            tracks.append([int(blob)])
    found = [
        Track(np.asarray(m), blobs.frame[np.asarray(m)]) for m in tracks if len(m) >= max(2, MIN_PRESENCE * frames)
    ]
    return sorted(found, key=lambda tr: -float(blobs.area[tr.blobs].sum()))


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def track_colour(track: Track, blobs: Blobs, frames: np.ndarray, background: Background, views: int = 5) -> Colour:
    """Palette colour of the median interior pixel over the track's largest views."""
    chosen = track.blobs[np.argsort(-blobs.area[track.blobs])[:views]]
    pixels = []
    for blob in chosen:
        mask, left, top = blobs.mask(int(blob))
        inner = _erode(mask)
        use = inner if inner.sum() >= 4 else mask
        crop = frames[blobs.frame[blob], top : top + mask.shape[0], left : left + mask.shape[1]]
        pixels.append(crop[use])
    return nearest_colour(np.median(np.concatenate(pixels), axis=0), background)
