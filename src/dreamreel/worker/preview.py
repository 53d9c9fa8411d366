"""Luma's ``progress_video``: small MP4 previews of the clip while it is being denoised.

How it works: after a denoising step the backend asks :meth:`PreviewWriter.due`; when it says yes,
the backend decodes the current latents with the VAE (the same decode the final clip gets, so the
preview shows the clip emerging from noise) and :meth:`deliver` encodes those frames into a small
MP4, records it as the generation's ``progress_video`` (fenced by worker id) and removes the preview
before the previous one (a client may still be downloading the previous one).

Why it is bounded: a preview costs one VAE decode plus a tiny encode, which can be as much as many
denoising steps (on the tiny model the decode is most of a job). So previews are made at most every
``interval_s`` *and* only after ``budget`` times the last preview's own cost of other work (the
first preview of a job uses the cost measured in the previous job of this worker), which caps their
share of the job's wall time at about ``1 / (1 + budget)`` whatever the model - except for a worker's
very first job, whose first preview's cost is not known in advance. The last
step never gets a preview: the real clip is about to exist. Preview files are removed when the job
ends.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from dreamreel.core.errors import StoreUnavailable
from dreamreel.core.jobstore import JobStore
from dreamreel.files import LocalFiles
from dreamreel.media.encode import encode_mp4

log = logging.getLogger("dreamreel.worker")

PREVIEW_SHORT_SIDE = 144
"""Previews are at most this tall/wide on the short side: a glance at the motion, cheap to encode."""
PREVIEW_CRF = 30
DEFAULT_BUDGET = 4.0
"""Wait at least 4x a preview's cost before the next: previews stay under ~20 % of a job's time."""


def preview_size(width: int, height: int, short_side: int = PREVIEW_SHORT_SIDE) -> tuple[int, int]:
    """Native size shrunk (never enlarged) to ``short_side``, both sides even (yuv420p)."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class PreviewWriter:
    """A :class:`~dreamreel.engine.backends.base.PreviewSink` that publishes ``progress_video`` files."""

    cost_estimate: ClassVar[float] = 0.0
    """The last preview's cost in this process (a worker runs one model), for a job's first preview."""

    def __init__(
        self, store: JobStore, files: LocalFiles, generation_id: str, worker_id: str, *,
        fps: int, interval_s: float, budget: float = DEFAULT_BUDGET,
    ) -> None:
        self.store, self.files = store, files
        self.generation_id, self.worker_id = generation_id, worker_id
        self.fps, self.interval_s, self.budget = fps, interval_s, budget
        self._started = time.monotonic()
        self._last_end = self._started
        self._last_cost = 0.0
        self._due_at: float | None = None
        self._written: list[Path] = []
        self.count = 0
        self.seconds = 0.0
        """Total wall time spent on previews (decode + encode + record), for logs and benchmarks."""

    def due(self, step: int, total: int) -> bool:
        now = time.monotonic()
        # Before this job's first preview, the cost measured in an earlier job of this process stands in.
        wait = max(self.interval_s, self.budget * (self._last_cost or PreviewWriter.cost_estimate))
        if self.interval_s <= 0 or step >= total or now - self._last_end < wait:
            return False
        self._due_at = now
        return True

    def deliver(self, frames: np.ndarray) -> None:
        started = self._due_at if self._due_at is not None else time.monotonic()
        self.count += 1
        directory = self.files.generation_dir(self.generation_id)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"progress-{self.count:03d}.mp4"
        height, width = frames.shape[1:3]
        out_w, out_h = preview_size(width, height)
        encode_mp4(frames, path, width=out_w, height=out_h, fps=self.fps, output_frames=len(frames),
                   crf=PREVIEW_CRF, preset="ultrafast")
        try:
            recorded = self.store.record_preview(self.generation_id, self.worker_id, self.files.key_for(path))
        except StoreUnavailable:  # a preview is a courtesy: skip this one, the job goes on
            recorded = False
        if recorded:
            self._written.append(path)
            while len(self._written) > 2:  # keep the one a client may still be fetching
                self._written.pop(0).unlink(missing_ok=True)
        else:  # the job is no longer ours (lease lost, cancelled, finished): do not publish
            path.unlink(missing_ok=True)
        end = time.monotonic()
        self._last_cost = PreviewWriter.cost_estimate = end - started
        self._last_end = end
        self.seconds += self._last_cost

    def cleanup(self, *, own_only: bool = False) -> None:
        """Remove every preview file of this job (called when the job ends, whatever the outcome), including
        those a dead earlier attempt left; ``own_only``: only this writer's (the job now belongs to another
        worker, whose previews are its own)."""
        directory = self.files.generation_dir(self.generation_id)
        for path in list(self._written) if own_only else directory.glob("progress-*.mp4"):
            path.unlink(missing_ok=True)
        self._written.clear()
