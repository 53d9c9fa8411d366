"""Luma's ``progress_video``: small MP4 previews of the clip while it is being denoised.

How it works: after a denoising step the backend asks :meth:`PreviewWriter.due`; when it says yes,
the backend decodes the current latents with the VAE (the same decode the final clip gets, so the
preview shows the clip emerging from noise) and :meth:`deliver` encodes those frames into a small
MP4, records it as the generation's ``progress_video`` (fenced by worker id) and removes the preview
before the previous one (a client may still be downloading the previous one).

Why it is bounded: a preview costs one VAE decode (the encode of the small MP4 is a few percent of
that), which can be as much as many denoising steps (on the tiny model the decode is most of a job).
:class:`PreviewCadence` decides when one is due, by time alone, never by step count:

* at most every ``interval_s``, counted from the job's start for the first one;
* only after ``budget`` times the last preview's own cost of other work (a job's first preview uses the
  cost measured in the previous job of this worker), which caps their share of a job's wall time at about
  ``1 / (1 + budget)`` whatever the model - except for a worker's very first job, whose first preview's
  cost is not known in advance;
* never in the last part of the denoising: when the steps left (at the pace measured so far in this run)
  take less than ``interval_s``, the clip itself is nearer than the next preview would be, so the decode
  would only delay it. A short job (the embedded model's 5 s clip takes about 2 s) therefore gets no
  preview at all, and a long one one every ``interval_s`` until its last stretch.

Preview files are removed when the job ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from dreamreel.config import Settings
from dreamreel.core.errors import StoreUnavailable
from dreamreel.core.jobstore import JobStore
from dreamreel.files import LocalFiles
from dreamreel.media.encode import encode_mp4

log = logging.getLogger("dreamreel.worker")

PREVIEW_SHORT_SIDE = 144
"""Previews are at most this tall/wide on the short side: a glance at the motion, cheap to encode."""
PREVIEW_CRF = 30
DEFAULT_BUDGET: float = Settings.model_fields["preview_budget"].default
"""Wait at least 9x a preview's cost before the next: previews stay under ~10 % of a job's time
(``preview_budget`` in the settings)."""


def preview_size(width: int, height: int, short_side: int = PREVIEW_SHORT_SIDE) -> tuple[int, int]:
    """Native size shrunk (never enlarged) to ``short_side``, both sides even (yuv420p)."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class PreviewCadence:
    """When a preview is due: the rules of this module's docstring, on a clock it is given (tests drive it).

    The pace of the denoising is learned from the gaps between consecutive steps, the time spent on a preview
    left out; a run that starts over (the next part of a long clip counts its steps from 1 again) keeps the
    pace learned so far and only re-anchors."""

    estimate: ClassVar[float] = 0.0
    """The last preview's cost in this process (a worker runs one model), for a job's first preview."""

    def __init__(self, interval_s: float, budget: float = DEFAULT_BUDGET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.budget, self.clock = interval_s, budget, clock
        self._last_end = clock()
        """When the last preview ended (the job's start before the first): the next waits from here."""
        self._last_cost = 0.0
        self._last_step: tuple[int, float] | None = None
        """The step last asked about and when, for the pace."""
        self._step_s = 0.0
        self._steps_timed = 0

    def step_seconds(self) -> float | None:
        """The mean time of a denoising step so far (previews left out), or None before two steps were seen."""
        return self._step_s / self._steps_timed if self._steps_timed else None

    def due(self, step: int, total: int) -> bool:
        now = self.clock()
        if self._last_step is not None and step == self._last_step[0] + 1:
            self._step_s += now - max(self._last_step[1], self._last_end)  # a preview made between is not a step
            self._steps_timed += 1
        self._last_step = (step, now)
        if self.interval_s <= 0 or step >= total:
            return False
        wait = max(self.interval_s, self.budget * (self._last_cost or PreviewCadence.estimate))
        if now - self._last_end < wait:
            return False
        pace = self.step_seconds()
        return pace is not None and (total - step) * pace >= self.interval_s  # else the clip itself is near

    def made(self, started: float) -> float:
        """A preview asked for at ``started`` (``clock()``) was made (or given up) just now; returns its cost."""
        end = self.clock()
        self._last_cost = PreviewCadence.estimate = end - started
        self._last_end = end
        return self._last_cost


class PreviewWriter:
    """A :class:`~dreamreel.engine.backends.base.PreviewSink` that publishes ``progress_video`` files."""

    def __init__(
        self, store: JobStore, files: LocalFiles, generation_id: str, worker_id: str, *,
        fps: int, interval_s: float, budget: float = DEFAULT_BUDGET,
    ) -> None:
        self.store, self.files = store, files
        self.generation_id, self.worker_id = generation_id, worker_id
        self.fps = fps
        self.cadence = PreviewCadence(interval_s, budget)
        self._due_at: float | None = None
        self._written: list[Path] = []
        self.count = 0
        self.seconds = 0.0
        """Total wall time spent on previews (decode + encode + record), for logs and benchmarks."""

    def due(self, step: int, total: int) -> bool:
        if not self.cadence.due(step, total):
            return False
        self._due_at = self.cadence.clock()
        return True

    def deliver(self, frames: np.ndarray) -> None:
        started = self._due_at if self._due_at is not None else self.cadence.clock()
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
        self.seconds += self.cadence.made(started)

    def cleanup(self, *, own_only: bool = False) -> None:
        """Remove every preview file of this job (called when the job ends, whatever the outcome), including
        those a dead earlier attempt left; ``own_only``: only this writer's (the job now belongs to another
        worker, whose previews are its own)."""
        directory = self.files.generation_dir(self.generation_id)
        for path in list(self._written) if own_only else directory.glob("progress-*.mp4"):
            path.unlink(missing_ok=True)
        self._written.clear()
