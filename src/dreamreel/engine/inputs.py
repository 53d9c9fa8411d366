"""A job's keyframes as pixels: what :func:`dreamreel.engine.render.render` asks of whoever runs it.

The engine needs three things from a request's keyframes (:class:`KeyframeSources`): an image slot's
picture fitted to a size, the MP4 of a generation a slot references, and the conditioning pixels of the
plan. Where those come from depends on who runs the engine, so it is a protocol: :class:`ImageSources`
resolves what any process can (http(s) and ``data:`` image URLs) and refuses the rest, which exist only
on a server (uploads, earlier generations: ``worker/inputs.py`` adds those from the job store and files).

It runs in the worker (or ``dreamreel generate``), never on the request path, so a slow image URL holds a
worker slot (bounded by the fetch deadline) rather than an HTTP handler. Any problem raises
:class:`InputError`, which fails the job with a ``failure_reason`` naming the keyframe; it is never a crash
and never a lost job.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Protocol

import numpy as np

from dreamreel.core.conditioning import UPLOAD_SCHEME
from dreamreel.core.edits import MAX_SOURCE_BYTES
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe
from dreamreel.engine.plan import Condition, Plan
from dreamreel.media.clip import sample_clip
from dreamreel.media.images import DEFAULT_MAX_PIXELS, ImageError, decode_image, fit_to_aspect
from dreamreel.net.fetch import FetchError, fetch_video, load_image_source

FIT_MODE = "crop"
"""Keyframe images are centre-cropped to the requested aspect, then resized (see media/images.py)."""


class InputError(Exception):
    """A keyframe could not be resolved; the message (``keyframes.<slot>: ...``) is the job's failure reason."""


class KeyframeSources(Protocol):
    """The keyframe pixels of one job, as the engine asks for them. Raises :class:`InputError`."""

    def image(self, request: GenerationRequest, slot: str, width: int, height: int) -> np.ndarray:
        """The slot's image as ``(height, width, 3)`` uint8, fitted to the size."""
        ...

    def source_path(self, request: GenerationRequest, slot: str) -> Path:
        """The MP4 of the generation the slot references (an extension's source clip)."""
        ...

    def condition_pixels(self, request: GenerationRequest, plan: Plan) -> list[np.ndarray]:
        """Pixels for each of ``plan.conditions``, ``(num_frames, h, w, 3)`` uint8 at native size."""
        ...

    def picture(self, url: str, field: str, width: int, height: int) -> np.ndarray:
        """An image given by URL (an edit's ``first_frame``), fitted to the size; errors name ``field``."""
        ...

    def edit_source(self, request: GenerationRequest) -> Path:
        """The file of ``request``'s edit source (fetched, or found on the server), not yet checked as a video."""
        ...


class ImageSources:
    """Resolves image keyframes (http(s) and ``data:`` URLs) of one job; uploads and generation references
    are refused, as they exist only on a server. Make one per job: fetched bytes and fitted pictures are
    cached for the job's life. Subclasses supply :meth:`image_bytes` and :meth:`source_path` from elsewhere."""

    def __init__(
        self, *, allow_private_urls: bool = False, fetch_timeout_s: float = 15.0,
        max_pixels: int = DEFAULT_MAX_PIXELS, video_fetch_timeout_s: float = 120.0,
        max_video_bytes: int = MAX_SOURCE_BYTES,
    ) -> None:
        self.allow_private_urls = allow_private_urls
        self.fetch_timeout_s = fetch_timeout_s
        self.video_fetch_timeout_s = video_fetch_timeout_s
        """A source video may be 100 MB: longer than an image's deadline, still bounded."""
        self.max_video_bytes = max_video_bytes
        self._scratch: Path | None = None
        self.max_pixels = max_pixels
        """Images declaring more pixels than this are refused from their header, before decoding."""
        self._fetched: dict[str, bytes] = {}
        self._images: dict[str, np.ndarray] = {}

    def image_bytes(self, url: str, field: str) -> bytes:
        """The bytes of an image URL; errors name ``field`` (``keyframes.frame0``, ``first_frame``)."""
        if url[:7].lower() == UPLOAD_SCHEME:
            raise InputError(f"{field}: uploads exist only on a server")
        try:
            return load_image_source(url, allow_private=self.allow_private_urls, timeout_s=self.fetch_timeout_s)
        except FetchError as exc:
            raise InputError(f"{field}: could not load the image ({exc})") from None

    def image(self, request: GenerationRequest, slot: str, width: int, height: int) -> np.ndarray:
        """The slot's image, decoded (EXIF-upright, alpha flattened) and fitted to ``width x height``."""
        keyframe = getattr(request.keyframes, slot)
        if not isinstance(keyframe, ImageKeyframe):
            raise InputError(f"keyframes.{slot} is not an image")
        return self.picture(keyframe.url, f"keyframes.{slot}", width, height)

    def picture(self, url: str, field: str, width: int, height: int) -> np.ndarray:
        """The image at ``url``, decoded (EXIF-upright, alpha flattened) and fitted to ``width x height``."""
        key = f"{field}:{width}x{height}"
        if key not in self._images:
            # Fetched once (both sizes then show the same picture, and the URL is not asked twice); the bytes are
            # kept rather than the decoded picture, whose size only the max_pixels cap bounds.
            if field not in self._fetched:
                self._fetched[field] = self.image_bytes(url, field)
            try:
                picture = decode_image(self._fetched[field], max_pixels=self.max_pixels)
            except ImageError as exc:
                raise InputError(f"{field}: not a usable image ({exc})") from None
            self._images[key] = fit_to_aspect(picture, width, height, FIT_MODE)
        return self._images[key]

    def edit_source(self, request: GenerationRequest) -> Path:
        """An http(s) source fetched into a scratch directory of this object's life (removed with it); the
        server's own sources (uploads, generations) are :class:`~dreamreel.worker.inputs.InputResolver`'s."""
        url = request.edit.source if request.edit is not None else ""
        if not url[:8].lower().startswith(("http://", "https://")):
            raise InputError(f"media.url: {url.split(':', 1)[0][:20]!r} sources exist only on a server")
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="dreamreel-source-"))
            weakref.finalize(self, shutil.rmtree, self._scratch, True)
        try:
            return fetch_video(url, self._scratch / "source", allow_private=self.allow_private_urls,
                               timeout_s=self.video_fetch_timeout_s, max_bytes=self.max_video_bytes)
        except FetchError as exc:
            raise InputError(f"media.url: could not load the source video ({exc})") from None

    def source_path(self, request: GenerationRequest, slot: str) -> Path:
        keyframe = getattr(request.keyframes, slot)
        if not isinstance(keyframe, GenerationKeyframe):
            raise InputError(f"keyframes.{slot} is not a generation")
        raise InputError(f"keyframes.{slot}: generations can be referenced only on a server")

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


class LocalSources(ImageSources):
    """:class:`ImageSources` for a process on the machine that holds the files (``dreamreel generate``, the
    benches): an edit's source may also be a local file path. Never used for a served request, whose paths
    would reach the server's disk."""

    def edit_source(self, request: GenerationRequest) -> Path:
        source = request.edit.source if request.edit is not None else ""
        if source.startswith("/"):
            path = Path(source)
            if not path.is_file():
                raise InputError(f"media.url: {source}: no such file")
            return path
        return super().edit_source(request)
