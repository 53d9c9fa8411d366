"""Run an upscale job: find the source generation's MP4 and re-encode it at the target resolution.

No model is loaded: an upscale is a resample + re-encode of the delivered clip (see
``media/upscale.py`` for exactly what that does and does not do), which is why this is not a render
(``engine/render.py``). The poster is the new video's first frame at the new size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dreamreel.core.generation import Generation, State
from dreamreel.core.jobstore import JobStore
from dreamreel.engine.backends.base import CancelCheck, GenerationCancelled
from dreamreel.files import LocalFiles
from dreamreel.media.encode import EncodedClip, write_poster
from dreamreel.media.upscale import first_frame, upscale_mp4


class UpscaleSourceGone(Exception):
    """The generation to upscale was deleted (or lost its video) after the upscale was accepted."""


def upscale_clip(
    job: Generation,
    store: JobStore,
    files: LocalFiles,
    *,
    video_path: Path,
    poster_path: Path | None,
    on_progress: Callable[[int, int], None],
    should_cancel: CancelCheck,
) -> EncodedClip:
    """Re-encode ``job.source_id``'s video at ``job.request``'s size; ``UpscaleSourceGone`` if it went away."""
    source = store.get(job.source_id) if job.source_id else None
    source_file = files.path_for(source.assets.video) if source and source.assets.video else None
    if source is None or source.state is not State.COMPLETED or source.video_info is None or source_file is None:
        raise UpscaleSourceGone(f"generation {job.source_id} to upscale no longer exists")
    width, height = job.request.output_size  # an explicit size was scaled to the new resolution at submission

    def on_frame(done: int, total: int) -> None:
        on_progress(done, total)
        if should_cancel():
            raise GenerationCancelled(f"cancelled after frame {done}/{total}")

    video = upscale_mp4(
        source_file, video_path, width=width, height=height, fps=source.video_info.fps,
        frames=source.video_info.frames, loop=source.request.loop, on_frame=on_frame,
    )
    if should_cancel():  # the flush and faststart pass ran after the last frame's check
        raise GenerationCancelled("cancelled after the last frame was encoded")
    poster = None
    if poster_path is not None:
        poster = write_poster(first_frame(source_file), poster_path, width=width, height=height)
    return EncodedClip(video=video, poster=poster)
