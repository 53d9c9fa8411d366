"""A job's keyframes on the server: :class:`~dreamreel.engine.inputs.ImageSources` plus what only a server has.

The engine resolves image URLs itself (``engine/inputs.py``); uploads (``upload:<id>``, the owner's files)
and references to earlier generations (the job store) exist only here. A reference is re-checked when the
job runs, not only at submission: the source may have been deleted, or failed, in between. Any problem
raises :class:`~dreamreel.engine.inputs.InputError`, the job's failure reason.
"""

from __future__ import annotations

from pathlib import Path

from dreamreel.core.conditioning import UPLOAD_SCHEME, generation_ref
from dreamreel.core.edits import GENERATION_SCHEME, MAX_SOURCE_BYTES
from dreamreel.core.generation import State
from dreamreel.core.jobstore import JobStore
from dreamreel.core.request import GenerationKeyframe, GenerationRequest
from dreamreel.engine.inputs import ImageSources, InputError
from dreamreel.files import LocalFiles
from dreamreel.media.images import DEFAULT_MAX_PIXELS


class InputResolver(ImageSources):
    """Resolves the keyframes of one job, for its owner."""

    def __init__(
        self, store: JobStore, files: LocalFiles, owner: str, *,
        allow_private_urls: bool = False, fetch_timeout_s: float = 15.0, max_pixels: int = DEFAULT_MAX_PIXELS,
        max_video_bytes: int = MAX_SOURCE_BYTES,
    ) -> None:
        super().__init__(allow_private_urls=allow_private_urls, fetch_timeout_s=fetch_timeout_s,
                         max_pixels=max_pixels, max_video_bytes=max_video_bytes)
        self.store, self.files, self.owner = store, files, owner

    def image_bytes(self, url: str, field: str) -> bytes:
        if url[:7].lower() == UPLOAD_SCHEME:
            data = self.files.upload_bytes(self.owner, url[7:])
            if data is None:
                raise InputError(f"{field}: upload {url[7:][:80]!r} not found")
            return data
        return super().image_bytes(url, field)

    def edit_source(self, request: GenerationRequest) -> Path:
        """An upload or a generation of the owner (re-checked: it may be gone since submission), else the URL
        fetched."""
        source = request.edit.source if request.edit is not None else ""
        lowered = source[:16].lower()
        if lowered.startswith(UPLOAD_SCHEME):
            path = self.files.upload_path(self.owner, source[len(UPLOAD_SCHEME):])
            if path is None:
                raise InputError(f"media.url: upload {source[len(UPLOAD_SCHEME):][:80]!r} no longer exists")
            return path
        if lowered.startswith(GENERATION_SCHEME):
            gid = source[len(GENERATION_SCHEME):]
            generation = self.store.get(gid)
            if generation is None or generation.owner != self.owner:
                raise InputError(f"media.url: generation {gid[:80]} no longer exists")
            path = self.files.path_for(generation.assets.video) if generation.assets.video else None
            if generation.state != State.COMPLETED or path is None:
                raise InputError(f"media.url: generation {gid[:80]} has no completed video")
            return path
        return super().edit_source(request)

    def source_path(self, request: GenerationRequest, slot: str) -> Path:
        """The MP4 of the generation referenced by ``slot``, re-checked: it may be gone since submission."""
        keyframe = getattr(request.keyframes, slot)
        if not isinstance(keyframe, GenerationKeyframe):
            raise InputError(f"keyframes.{slot} is not a generation")
        gid = generation_ref(keyframe.id)
        source = self.store.get(gid)
        if source is None or source.owner != self.owner:
            raise InputError(f"keyframes.{slot}: generation {gid} no longer exists")
        path = self.files.path_for(source.assets.video) if source.assets.video else None
        if source.state != State.COMPLETED or path is None:
            raise InputError(f"keyframes.{slot}: generation {gid} has no completed video")
        return path
