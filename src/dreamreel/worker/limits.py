"""A job's wall-clock limit: how long a worker may spend on it before it is failed and the worker freed.

Why a limit at all: a pipeline that hangs (a driver that never returns, a deadlock in a native library)
keeps its worker heart-beating, so the lease never lapses and nothing else would ever free that worker.

Why by size: the work of a job grows with what it delivers, pixels x frames (H.264 encoding scales with
it, and so does a model's cost at larger sizes), and the speed per megapixel-frame is a property of the
model and its hardware. So the limit is ``job_time_base_seconds`` (loading inputs, a first preview, a
slow start) plus the delivered megapixel-frames times the model's allowance
(``model_seconds_per_megapixel_frame``, else ``job_seconds_per_megapixel_frame``). ``job_time_limit_seconds``
replaces all of it with one number. An edit of a URL source, whose size is known only once it is fetched,
is allowed for a 4k source of the longest length its edit takes. The defaults are generous: the limit is a
guard against hangs, not a quota, and a false positive throws away a whole job.
"""

from __future__ import annotations

from dreamreel.config import Settings
from dreamreel.core.conditioning import generation_ref
from dreamreel.core.generation import Generation, Kind
from dreamreel.core.jobstore import JobStore
from dreamreel.core.request import MAX_LONG_SIDE, GenerationKeyframe
from dreamreel.engine.plan import OUTPUT_FPS


def delivered_frames(job: Generation, store: JobStore) -> int:
    """Frames the job will deliver: its own seconds at 24 fps, plus the clips an extension contains; an
    upscale delivers exactly its source's frames. A source that is gone counts nothing (the job fails fast)."""
    if job.kind is Kind.UPSCALE:
        source = store.get(job.source_id) if job.source_id else None
        return source.video_info.frames if source and source.video_info else 0
    frames = job.request.duration_s * OUTPUT_FPS
    keyframes = job.request.keyframes
    for keyframe in (keyframes.frame0, keyframes.frame1) if keyframes else ():
        if isinstance(keyframe, GenerationKeyframe):
            source = store.get(generation_ref(keyframe.id))
            frames += source.video_info.frames if source and source.video_info else 0
    return frames


def job_time_limit(job: Generation, settings: Settings, store: JobStore) -> float:
    """Seconds ``job`` may run on this worker, counted once its model is loaded."""
    if settings.job_time_limit_seconds is not None:
        return settings.job_time_limit_seconds
    width, height = job.request.output_size
    if job.request.edit is not None and job.request.size is None:  # a URL source, unseen: it may be 4k
        width, height = MAX_LONG_SIDE, MAX_LONG_SIDE * 9 // 16
    megapixel_frames = width * height * delivered_frames(job, store) / 1e6
    allowance = settings.model_seconds_per_megapixel_frame.get(job.model, settings.job_seconds_per_megapixel_frame)
    return settings.job_time_base_seconds + megapixel_frames * allowance


def limit_reason(limit_s: float) -> str:
    """The failure reason people read: the limit as set, without float noise."""
    shown = f"{limit_s:.0f}" if limit_s >= 10 else f"{limit_s:.3g}"
    return f"the job exceeded its time limit of {shown} s"
