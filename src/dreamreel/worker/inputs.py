"""Resolve a job's keyframes into pixels: fetch/decode images, read earlier generations' clips.

This runs in the worker, never on the request path, so a slow image URL holds a worker slot (bounded by
the fetch deadline) rather than an HTTP handler. Any problem raises :class:`InputError`, which fails the
job with a ``failure_reason`` naming the keyframe; it is never a crash and never a lost job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dreamreel.core.conditioning import UPLOAD_SCHEME, generation_ref
from dreamreel.core.generation import State
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe
from dreamreel.engine.plan import Condition, Plan
from dreamreel.files import LocalFiles
from dreamreel.media.clip import sample_clip
from dreamreel.media.images import ImageError, decode_image, fit_to_aspect
from dreamreel.net.fetch import FetchError, load_image_source
from dreamreel.store.base import JobStore

FIT_MODE = "crop"
"""Keyframe images are centre-cropped to the requested aspect, then resized (see media/images.py)."""


class InputError(Exception):
    """A keyframe could not be resolved; the message is the job's failure reason."""


@dataclass
class InputResolver:
    """Resolves the keyframes of one job, for its owner."""

    store: JobStore | None
    """None outside the server (``dreamreel generate``): only image keyframes can be resolved then."""
    storage: LocalFiles | None
    owner: str
    allow_private_urls: bool = False
    fetch_timeout_s: float = 15.0
    _fetched: dict[str, bytes] = field(default_factory=dict)
    _images: dict[str, np.ndarray] = field(default_factory=dict)

    def image_bytes(self, url: str, slot: str) -> bytes:
        if url[:7].lower() == UPLOAD_SCHEME:
            if self.storage is None:
                raise InputError(f"keyframes.{slot}: uploads exist only on a server")
            data = self.storage.upload_bytes(self.owner, url[7:])
            if data is None:
                raise InputError(f"keyframes.{slot}: upload {url[7:][:80]!r} not found")
            return data
        try:
            return load_image_source(url, allow_private=self.allow_private_urls, timeout_s=self.fetch_timeout_s)
        except FetchError as exc:
            raise InputError(f"keyframes.{slot}: could not load the image ({exc})") from None

    def image(self, request: GenerationRequest, slot: str, width: int, height: int) -> np.ndarray:
        """The slot's image, decoded (EXIF-upright, alpha flattened) and fitted to ``width x height``."""
        keyframe = getattr(request.keyframes, slot)
        if not isinstance(keyframe, ImageKeyframe):
            raise InputError(f"keyframes.{slot} is not an image")
        key = f"{slot}:{width}x{height}"
        if key not in self._images:
            # Fetched once (both sizes then show the same picture, and the URL is not asked twice); the bytes are
            # kept rather than the decoded picture, whose size only the 40 MP cap bounds.
            if slot not in self._fetched:
                self._fetched[slot] = self.image_bytes(keyframe.url, slot)
            try:
                picture = decode_image(self._fetched[slot])
            except ImageError as exc:
                raise InputError(f"keyframes.{slot}: not a usable image ({exc})") from None
            self._images[key] = fit_to_aspect(picture, width, height, FIT_MODE)
        return self._images[key]

    def source_path(self, request: GenerationRequest, slot: str) -> Path:
        """The MP4 of the generation referenced by ``slot``, re-checked: it may be gone since submission."""
        keyframe = getattr(request.keyframes, slot)
        if not isinstance(keyframe, GenerationKeyframe):
            raise InputError(f"keyframes.{slot} is not a generation")
        gid = generation_ref(keyframe.id)
        if self.store is None or self.storage is None:
            raise InputError(f"keyframes.{slot}: generations can be referenced only on a server")
        source = self.store.get(gid)
        if source is None or source.owner != self.owner:
            raise InputError(f"keyframes.{slot}: generation {gid} no longer exists")
        path = self.storage.path_for(source.assets.video) if source.assets.video else None
        if source.state != State.COMPLETED or path is None:
            raise InputError(f"keyframes.{slot}: generation {gid} has no completed video")
        return path

    def condition_pixels(self, request: GenerationRequest, plan: Plan) -> list[np.ndarray]:
        """Pixels for each of ``plan.conditions``, ``(num_frames, h, w, 3)`` uint8 at native size."""
        return [self._pixels(request, plan, condition) for condition in plan.conditions]

    def _pixels(self, request: GenerationRequest, plan: Plan, condition: Condition) -> np.ndarray:
        width, height = plan.native_width, plan.native_height
        if condition.kind == "image":
            return self.image(request, condition.slot, width, height)[None]
        path = self.source_path(request, condition.slot)
        try:
            return sample_clip(path, end="tail" if condition.slot == "frame0" else "head",
                               count=condition.num_frames, stride=plan.source_stride, width=width, height=height)
        except (OSError, ValueError) as exc:
            raise InputError(f"keyframes.{condition.slot}: cannot read the source clip ({exc})") from None
