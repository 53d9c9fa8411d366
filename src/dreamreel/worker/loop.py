"""The worker loop: claim -> heartbeat while rendering -> complete/fail, until told to stop.

Shape: one job at a time per process (one model per device); a heartbeat thread renews the lease
and relays cancellation; a job whose lease is lost is abandoned (another worker owns it now).

What a generation *is* lives in the engine (``engine.render.render``, the same unit ``dreamreel generate``
runs): this loop only hands it the job's keyframe sources (``worker/inputs.py``), encodes what it yields
(``media.encode.encode_clip``), and records the outcome. Upscale jobs run no model (``worker/reencode.py``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dreamreel.config import Settings
from dreamreel.core.errors import StoreUnavailable
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Assets, Generation, Kind, VideoInfo
from dreamreel.core.jobstore import JobStore, WorkerInfo
from dreamreel.engine.backends.base import Backend, GenerationCancelled
from dreamreel.engine.inputs import InputError
from dreamreel.engine.registry import ModelSpec, load_backend, specs_from_settings
from dreamreel.engine.render import render
from dreamreel.files import LocalFiles
from dreamreel.media.encode import encode_clip
from dreamreel.store import open_store
from dreamreel.worker.inputs import InputResolver
from dreamreel.worker.preview import PreviewWriter
from dreamreel.worker.reencode import upscale_clip

log = logging.getLogger("dreamreel.worker")

T = TypeVar("T")


@dataclass
class JobControl:
    """Shared between the render thread and the heartbeat thread of one job."""

    stop: threading.Event = field(default_factory=threading.Event)
    lease_lost: bool = False
    cancel_requested: bool = False

    shutting_down: threading.Event = field(default_factory=threading.Event)

    def should_cancel(self) -> bool:
        return self.lease_lost or self.cancel_requested or self.shutting_down.is_set()


class ProgressReporter:
    """Persists denoising progress, at most once per interval plus the last step (SQLite is shared)."""

    def __init__(
        self, store: JobStore, generation_id: str, worker_id: str, interval_s: float, label: str = "Denoising step"
    ) -> None:
        self.store, self.generation_id, self.worker_id = store, generation_id, worker_id
        self.interval_s, self.label = interval_s, label
        self._last_write = 0.0

    def __call__(self, step: int, total: int) -> None:
        now = time.monotonic()
        if step < total and now - self._last_write < self.interval_s:
            return
        self._last_write = now
        try:
            self.store.record_progress(self.generation_id, self.worker_id, step, total)
            self.store.add_event(self.generation_id, "INFO", f"{self.label} {step}/{total}")
        except StoreUnavailable:  # progress is a courtesy: the job goes on, the next write catches up
            log.warning("%s: progress %d/%d not recorded (store unavailable)", self.generation_id, step, total)


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        store: JobStore | None = None,
        specs: dict[str, ModelSpec] | None = None,
        exit_when: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings.resolved_database_url)
        self.files = LocalFiles(settings.resolved_storage_dir)
        self.specs = specs or specs_from_settings(settings.model_dir, settings.device, settings.dtype)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.models: tuple[str, ...] = ()
        """Public names whose checkpoint is loaded (replaced whole, so the heartbeat thread reads it safely)."""
        self.current_job: str | None = None
        self._last_announce = float("-inf")
        self.stop_event = threading.Event()
        self.exit_when = exit_when or (lambda: False)
        self._backends: dict[ModelSpec, Backend] = {}

    def backend_for(self, model: str) -> Backend:
        """Load each checkpoint once and keep it: model load dominates a cold start."""
        spec = self.specs[model]
        if spec not in self._backends:
            started = time.perf_counter()
            self._backends[spec] = load_backend(spec)
            log.info("loaded %s (%s) in %.1fs", model, spec.path, time.perf_counter() - started)
            self.models = tuple(sorted(name for name, each in self.specs.items() if each in self._backends))
            self.announce()
        return self._backends[spec]

    def announce(self) -> None:
        """Tell the store who this worker is and what it runs (``GET /admin/workers``, ``dreamreel workers``).
        A store error is logged, never raised: being seen must not cost the worker or its job."""
        self._last_announce = time.monotonic()
        info = WorkerInfo(
            worker_id=self.worker_id, host=socket.gethostname(), pid=os.getpid(), device=self.settings.device,
            models=self.models, current_job=self.current_job, started_at=self.started_at, last_seen=time.time(),
        )
        try:
            self.store.announce_worker(info)
        except Exception as exc:
            log.warning("could not announce worker %s: %s: %s", self.worker_id, type(exc).__name__, exc)

    def forget(self) -> None:
        """Remove this worker's row (a clean shutdown); a store error is logged."""
        try:
            self.store.forget_worker(self.worker_id)
        except Exception as exc:
            log.warning("could not forget worker %s: %s: %s", self.worker_id, type(exc).__name__, exc)

    def warm_up(self) -> None:
        self.announce()
        for model in self.specs:
            self.backend_for(model)

    def run_forever(self) -> None:
        log.info("worker %s polling %s", self.worker_id, self.settings.resolved_database_url)
        while not self.stop_event.is_set() and not self.exit_when():
            if time.monotonic() - self._last_announce >= self.settings.heartbeat_seconds:
                self.announce()  # idle: no job heartbeat says this worker is alive
            try:
                if not self.run_once():  # idle: woken by the store's notification, else polling
                    self.store.wait_for_work(self.settings.poll_seconds)
            except StoreUnavailable as exc:  # the database is away: keep the model loaded, try again
                log.warning("store unavailable (%s); retrying in %.1fs", exc, self.settings.poll_seconds)
                self.stop_event.wait(self.settings.poll_seconds)
        self.forget()  # a clean stop; a crashed worker's row stays, and drops out of the alive window

    def run_once(self) -> bool:
        """Claim and run one job; False when the queue was empty."""
        job = self.store.claim(self.worker_id, self.settings.lease_seconds)
        if job is None:
            return False
        self.process(job)
        return True

    def _heartbeat(self, job: Generation, control: JobControl) -> None:
        while not control.stop.wait(self.settings.heartbeat_seconds):
            try:
                beat = self.store.heartbeat(job.id, self.worker_id, self.settings.lease_seconds)
            except StoreUnavailable:  # keep working: the lease may lapse meanwhile, and the fence will say so
                log.warning("heartbeat for %s not recorded (store unavailable)", job.id)
                continue
            control.lease_lost = not beat.owned
            control.cancel_requested = beat.cancel_requested
            self.announce()
            if control.lease_lost:
                log.warning("lost the lease on %s; abandoning it", job.id)
                return

    def _stored(self, verb: Callable[..., T], *args: Any) -> T:
        """``verb(*args)``, retried while the store is unavailable: a finished job's outcome must not be lost
        to a database restart. Fenced verbs stay safe to retry: if the lease lapsed meanwhile, the store
        refuses the write and the job's new owner decides."""
        while True:
            try:
                return verb(*args)
            except StoreUnavailable:
                if self.stop_event.is_set():  # shutting down: the lease will hand the job to another worker
                    raise
                log.warning("store unavailable; retrying %s in %.1fs", verb.__name__, self.settings.heartbeat_seconds)
                self.stop_event.wait(self.settings.heartbeat_seconds)

    def process(self, job: Generation) -> None:
        """Run one claimed job, announcing it as this worker's ``current_job`` while it runs."""
        self.current_job = job.id
        self.announce()
        try:
            self._process(job)
        finally:
            self.current_job = None
            self.announce()

    def _process(self, job: Generation) -> None:
        log.info("running %s (attempt %d): %r", job.id, job.attempts, job.request.prompt[:80])
        control = JobControl(shutting_down=self.stop_event)
        beat = threading.Thread(target=self._heartbeat, args=(job, control), daemon=True)
        beat.start()
        preview: PreviewWriter | None = None
        try:
            if job.kind is Kind.UPSCALE:  # no model: re-encode an earlier clip (worker/reencode.py)
                clip = upscale_clip(
                    job, self.store, self.files,
                    video_path=self.files.generation_dir(job.id) / "video.mp4",
                    poster_path=self.files.generation_dir(job.id) / "poster.jpg",
                    on_progress=ProgressReporter(
                        self.store, job.id, self.worker_id, self.settings.progress_interval_seconds,
                        label="Encoded frame",
                    ),
                    should_cancel=control.should_cancel,
                )
            else:
                backend = self.backend_for(job.model)
                preview = PreviewWriter(
                    self.store, self.files, job.id, self.worker_id, fps=backend.native_grid().fps,
                    interval_s=self.settings.preview_interval_seconds,
                )
                rendered = render(
                    backend,
                    job.request,
                    seed=job.seed,
                    sources=InputResolver(self.store, self.files, job.owner,
                                          allow_private_urls=self.settings.allow_private_urls,
                                          max_pixels=self.settings.max_image_pixels),
                    on_step=ProgressReporter(
                        self.store, job.id, self.worker_id, self.settings.progress_interval_seconds
                    ),
                    should_cancel=control.should_cancel,
                    steps=self.settings.steps,
                    preview=preview,
                    on_plan=lambda plan: self._stored(self.store.add_event, job.id, "INFO",
                                                      f"Model prompt: {plan.prompt}"),
                )
                clip = encode_clip(
                    rendered,
                    video_path=self.files.generation_dir(job.id) / "video.mp4",
                    poster_path=self.files.generation_dir(job.id) / "poster.jpg",
                )
        except InputError as exc:  # a bad keyframe is the client's problem: say which and why
            log.warning("generation %s: %s", job.id, exc)
            self._stored(self.store.fail, job.id, self.worker_id, FailureCode.INPUT, str(exc))
            return
        except GenerationCancelled:
            if control.lease_lost:
                return
            if control.cancel_requested:
                self._stored(self.store.finish_cancelled, job.id, self.worker_id)
            else:  # this worker is shutting down: hand the job straight back to the queue
                self._stored(self.store.release, job.id, self.worker_id)
            return
        except Exception as exc:  # a job failure must never kill the worker
            log.error("generation %s failed: %s", job.id, traceback.format_exc())
            self._stored(self.store.fail, job.id, self.worker_id, FailureCode.INTERNAL,
                           f"generation failed: {type(exc).__name__}: {exc}")
            return
        finally:
            control.stop.set()
            beat.join()
            if preview is not None:
                preview.cleanup()
                if preview.count:
                    log.info("%s: %d previews took %.2fs", job.id, preview.count, preview.seconds)
        video = clip.video
        self._stored(self.store.add_event, job.id, "INFO",
                     f"Encoded {video.width}x{video.height} {video.frames} frames")
        done = self._stored(
            self.store.complete,
            job.id,
            self.worker_id,
            Assets(
                video=self.files.key_for(video.path),
                image=self.files.key_for(clip.poster) if clip.poster else None,
            ),
            VideoInfo(video.width, video.height, video.fps, video.frames, video.size_bytes),
        )
        if not done:
            log.warning("%s finished but this worker no longer owns it; result left to the owner", job.id)
