"""The worker loop: claim -> heartbeat while rendering -> complete/fail, until told to stop.

Shape: one job at a time per process (one model per device); a watcher thread renews the lease, relays a
cancel or delete, and watches the job's wall-clock limit (``worker/limits.py``); a job whose lease is lost is
abandoned (another worker owns it now).

Stopping: every stage asks :meth:`JobControl.should_cancel` (denoising steps, each module of the model, each
delivered or re-encoded frame), so a cancel, a delete or the time limit stops the job wherever it is, and
whatever it had written is removed. A job stuck where no check runs (native code) is recorded by the watcher
after ``job_stop_grace_seconds`` and the process exits with :data:`EXIT_STUCK_JOB` for a fresh one. Any other
fault fails only its job (``worker/faults.py``: a code and a reason) and the worker takes the next one.

What a generation *is* lives in the engine (``engine.produce.produce_clip``: render at the request's speed,
then encode; the same unit ``dreamreel generate`` runs): this loop only hands it the job's keyframe sources
(``worker/inputs.py``), progress and cancelling, and records the outcome. Upscale jobs run no model
(``worker/reencode.py``).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import torch

from dreamreel.config import Settings
from dreamreel.core.errors import StoreUnavailable
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Assets, Generation, Kind, VideoInfo
from dreamreel.core.jobstore import JobStore, WorkerInfo
from dreamreel.core.logs import generation_context
from dreamreel.engine.backends.base import Backend, GenerationCancelled
from dreamreel.engine.catalog import Catalog, ModelSpec
from dreamreel.engine.compile import CompileOptions, compile_loaded, served_caches
from dreamreel.engine.plan import Plan
from dreamreel.engine.produce import chained, produce_clip
from dreamreel.engine.registry import load_backend
from dreamreel.files import LocalFiles
from dreamreel.media.encode import EncodedClip
from dreamreel.store import open_store
from dreamreel.worker.faults import classify, release_memory
from dreamreel.worker.inputs import InputResolver
from dreamreel.worker.limits import job_time_limit, limit_reason
from dreamreel.worker.metrics import JobClock, WorkerMetrics
from dreamreel.worker.preview import PreviewWriter
from dreamreel.worker.reencode import upscale_clip

log = logging.getLogger("dreamreel.worker")

T = TypeVar("T")


EXIT_STUCK_JOB = 70
"""Exit status of a worker whose job did not stop within ``job_stop_grace_seconds`` of being told to (its thread
is stuck in native code, where no check runs): the job's outcome is recorded first, and the supervisor
(``dreamreel serve``, systemd, Kubernetes) starts a fresh worker."""


@dataclass
class JobControl:
    """One job's stop signals, shared by the thread that runs the job and its watcher thread.

    Every stage asks :meth:`should_cancel` (between denoising steps, before each module of the model runs,
    before each delivered or re-encoded frame): it turns true on a cancel or delete (seen by the watcher), a
    lost lease, the worker shutting down, or the job's wall-clock limit passing. Which one it was decides
    the outcome the worker records."""

    shutting_down: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    """Set when the job's work is over, whatever its outcome: the watcher stops."""
    lease_lost: bool = False
    cancel_requested: bool = False
    """A cancel or delete of the job was seen in the store."""
    limit_s: float = math.inf
    deadline: float = math.inf
    """``time.monotonic()`` past which the job has run out of time (infinite until :meth:`start_clock`)."""
    stop_asked_at: float | None = None
    """When the watcher first saw a reason to stop (cancel, time limit): the grace period runs from there."""
    native: tuple[int, int, int] | None = None
    """The job's native (width, height, frames) once planned: a reason it ran out of memory names them."""

    def start_clock(self, limit_s: float) -> None:
        self.limit_s, self.deadline = limit_s, time.monotonic() + limit_s

    def timed_out(self) -> bool:
        return time.monotonic() >= self.deadline

    def should_cancel(self) -> bool:
        return self.lease_lost or self.cancel_requested or self.shutting_down.is_set() or self.timed_out()


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
        catalog: Catalog | None = None,
        exit_when: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings.resolved_database_url)
        self.files = LocalFiles(settings.resolved_storage_dir)
        self.catalog = catalog or settings.catalog()
        """The public names this worker serves (every configured one: a worker claims any job)."""
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.models: tuple[str, ...] = ()
        """Public names whose checkpoint is loaded (replaced whole, so the heartbeat thread reads it safely)."""
        self.current_job: str | None = None
        self._last_announce = float("-inf")
        self.stop_event = threading.Event()
        self.exit_when = exit_when or (lambda: False)
        self._backends: dict[ModelSpec, Backend] = {}
        """Loaded checkpoints, least recently used first (at most ``max_loaded_models``)."""
        self.metrics = WorkerMetrics()
        if settings.worker_metrics_port:
            self.metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)

    def backend_for(self, model: str) -> Backend:
        """The loaded checkpoint behind ``model``: loaded once and kept (model load dominates a cold start); when
        ``max_loaded_models`` are loaded already, the least recently used is dropped first and its memory given
        back, so switching between models costs a load, never an out-of-memory."""
        spec = self.catalog.entry(model).spec
        if spec in self._backends:
            self._backends[spec] = self._backends.pop(spec)  # most recently used last
            return self._backends[spec]
        while len(self._backends) >= self.settings.max_loaded_models:
            evicted = next(iter(self._backends))
            del self._backends[evicted]
            release_memory()
            log.info("unloaded %s (%s) to make room", evicted.family, evicted.path)
        started = time.perf_counter()
        backend = load_backend(spec)
        options = CompileOptions(self.settings.compile, self.settings.compile_backend, self.settings.compile_dynamic)
        compile_loaded(backend, options, served_caches(self.catalog, spec))  # at load, never in a job's warm path
        self._backends[spec] = backend
        load_s = time.perf_counter() - started
        self.metrics.model_load.labels(model).set(load_s)
        log.info("loaded %s (%s, %s) in %.1fs", model, spec.family, spec.path, load_s)
        self.models = tuple(name for name, entry in self.catalog.models.items() if entry.spec in self._backends)
        self.announce()
        return self._backends[spec]

    @property
    def device(self) -> str:
        """The devices this worker's models run on, as ``dreamreel workers`` shows them."""
        return ", ".join(sorted({entry.device for entry in self.catalog.models.values()}))

    def announce(self) -> None:
        """Tell the store who this worker is and what it runs (``GET /admin/workers``, ``dreamreel workers``).
        A store error is logged, never raised: being seen must not cost the worker or its job."""
        self._last_announce = time.monotonic()
        info = WorkerInfo(
            worker_id=self.worker_id, host=socket.gethostname(), pid=os.getpid(), device=self.device,
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
        torch.set_num_threads(self.settings.resolved_torch_threads)  # N workers on C cores: C / N each
        self.announce()
        self.backend_for(self.catalog.default)  # the others load when a job asks for them

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

    def _watch(self, job: Generation, control: JobControl) -> None:
        """The job's watcher thread: renews the lease every ``heartbeat_seconds``, looks for a cancel or delete
        every ``cancel_poll_seconds`` in between (a read), and ends the process when the job, told to stop,
        has not stopped ``job_stop_grace_seconds`` later."""
        settings = self.settings
        next_beat = time.monotonic() + settings.heartbeat_seconds
        while not control.done.wait(min(settings.heartbeat_seconds, settings.cancel_poll_seconds)):
            now = time.monotonic()
            try:
                if now >= next_beat:
                    next_beat = now + settings.heartbeat_seconds
                    beat = self.store.heartbeat(job.id, self.worker_id, settings.lease_seconds)
                    control.lease_lost = not beat.owned
                    control.cancel_requested = control.cancel_requested or beat.cancel_requested
                    self.announce()
                elif not control.cancel_requested:
                    current = self.store.get(job.id)  # None once the generation is deleted
                    control.cancel_requested = current is None or current.cancel_requested
            except StoreUnavailable:  # keep working: the lease may lapse meanwhile, and the fence will say so
                log.warning("heartbeat for %s not recorded (store unavailable)", job.id)
            if control.lease_lost:
                log.warning("lost the lease on %s; abandoning it", job.id)
                return
            # The grace runs once the job's own clock has started: a cold model load (not the job's, and with no
            # checks inside) is left to finish, and the job then stops at its first check.
            started = math.isfinite(control.deadline)
            if control.stop_asked_at is None and started and (control.cancel_requested or control.timed_out()):
                control.stop_asked_at = now
            if control.stop_asked_at is not None and now - control.stop_asked_at >= settings.job_stop_grace_seconds:
                self._exit_stuck(job, control)

    def _exit_stuck(self, job: Generation, control: JobControl) -> NoReturn:
        """The job did not stop ``job_stop_grace_seconds`` after it was told to: its thread is stuck where no
        check runs (native code, a blocking call). Record its outcome (fenced), remove its files, and exit:
        a fresh process is the only way to get that thread's memory and device back."""
        grace = self.settings.job_stop_grace_seconds
        try:
            if control.cancel_requested:
                recorded = self.store.finish_cancelled(job.id, self.worker_id)
            else:
                reason = f"{limit_reason(control.limit_s)}; it did not stop within {grace:g} s, so its worker restarted"
                recorded = self.store.fail(job.id, self.worker_id, FailureCode.TIME_LIMIT, reason)
            if recorded:
                self.files.delete_generation(job.id)
        except Exception as exc:  # exiting regardless: the lease lapses and the store's rules decide
            log.error("could not record the end of %s: %s: %s", job.id, type(exc).__name__, exc)
        log.error("%s did not stop %g s after it was told to; exiting with status %d for a fresh worker",
                  job.id, grace, EXIT_STUCK_JOB)
        self.forget()
        logging.shutdown()
        os._exit(EXIT_STUCK_JOB)

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
        self.metrics.busy.set(1)
        try:
            with generation_context(job):  # this job's request id and generation id on every line it logs
                self._process(job)
        finally:
            self.current_job = None
            self.metrics.busy.set(0)
            self.announce()

    def _process(self, job: Generation) -> None:
        """Run ``job`` with its watcher thread beside it, then record what came of it."""
        log.info("running %s (attempt %d): %r", job.id, job.attempts, job.request.prompt[:80])
        control = JobControl(shutting_down=self.stop_event)
        watcher = threading.Thread(target=self._watch, args=(job, control), name="job-watcher", daemon=True)
        watcher.start()
        previews: list[PreviewWriter] = []
        clip: EncodedClip | None = None
        error: Exception | None = None
        clock = JobClock(job)
        try:
            clip = self._run(job, control, previews, clock)
        except Exception as exc:  # a job failure must never kill the worker
            error = exc
        finally:
            control.done.set()
            watcher.join()
            for preview in previews:
                preview.cleanup(own_only=control.lease_lost)
                if preview.count:
                    log.info("%s: %d previews took %.2fs", job.id, preview.count, preview.seconds)
        if clip is not None and self._still_wanted(job, control):
            clock.record_run(self.metrics)
            if self._complete(job, clip):
                clock.record_completed(self.metrics)
                self.metrics.ended("completed", job)
            return
        self._end_unfinished(job, control, error)
        error = None  # its traceback's frames hold the job's arrays and tensors
        release_memory()

    def _run(self, job: Generation, control: JobControl, previews: list[PreviewWriter], clock: JobClock) -> EncodedClip:
        """Render and encode ``job`` (or re-encode, for an upscale) into its generation directory."""
        video_path = self.files.generation_dir(job.id) / "video.mp4"
        poster_path = self.files.generation_dir(job.id) / "poster.jpg"
        if job.kind is Kind.UPSCALE:  # no model: re-encode an earlier clip (worker/reencode.py)
            control.start_clock(job_time_limit(job, self.settings, self.store))
            return upscale_clip(
                job, self.store, self.files, video_path=video_path, poster_path=poster_path,
                on_progress=ProgressReporter(
                    self.store, job.id, self.worker_id, self.settings.progress_interval_seconds, label="Encoded frame",
                ),
                should_cancel=control.should_cancel,
            )
        entry = self.catalog.entry(job.model)
        backend = self.backend_for(job.model)
        control.start_clock(job_time_limit(job, self.settings, self.store))  # a cold model load is not the job's
        preview = PreviewWriter(
            self.store, self.files, job.id, self.worker_id, fps=backend.native_grid().fps,
            interval_s=self.settings.preview_interval_seconds, budget=self.settings.preview_budget,
        )
        previews.append(preview)
        return produce_clip(
            backend,
            entry,
            job.request,
            seed=job.seed,
            sources=InputResolver(self.store, self.files, job.owner,
                                  allow_private_urls=self.settings.allow_private_urls,
                                  max_video_bytes=self.settings.max_video_bytes),
            on_step=chained(clock.on_step, ProgressReporter(self.store, job.id, self.worker_id,
                                                          self.settings.progress_interval_seconds)),
            should_cancel=control.should_cancel,
            video_path=video_path,
            poster_path=poster_path,
            preview=preview,
            on_plan=lambda plan: self._planned(job, control, plan),
        )

    def _planned(self, job: Generation, control: JobControl, plan: Plan) -> None:
        control.native = (plan.native_width, plan.native_height, plan.native_frames)
        self._stored(self.store.add_event, job.id, "INFO", f"Model prompt: {plan.prompt}")

    def _memory_context(self, job: Generation, control: JobControl) -> str:
        """What an out-of-memory reason says beside the allocator's words: the model, the clip asked for and
        made, and the model's memory budget (``memory_budget_gb``), so the caller and the operator can tell
        a clip too large for the model from a worker short of memory at that moment."""
        if job.kind is Kind.UPSCALE:
            return ""
        request = job.request
        asked = (f"{request.size[0]}x{request.size[1]}" if request.size
                 else f"{request.resolution.value} {request.aspect_ratio.value}")
        made = f", made at {control.native[0]}x{control.native[1]} x {control.native[2]} frames" if control.native \
            else ""
        budget = self.catalog.models[job.model].memory_budget_gb if job.model in self.catalog.models else None
        limit = f"its memory budget is {budget:g} GiB" if budget is not None else "it has no memory budget set"
        return f"{job.model} at {asked} {request.duration_s} s{made}; {limit}"

    def _still_wanted(self, job: Generation, control: JobControl) -> bool:
        """Whether a finished clip may be delivered: looked up afresh, as a cancel or delete may have come
        after the watcher's last look (then the outcome is ``cancelled``, like a cancel seen mid-job)."""
        if control.lease_lost:
            return False
        current = self._stored(self.store.get, job.id)
        if current is None or current.cancel_requested:
            control.cancel_requested = True
            return False
        return True

    def _complete(self, job: Generation, clip: EncodedClip) -> bool:
        """Record the clip; whether this worker still owned the job (so the completion is its)."""
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
        elif self._stored(self.store.get, job.id) is None:  # deleted while it completed: its files go too
            self.files.delete_generation(job.id)
        return bool(done)

    def _end_unfinished(self, job: Generation, control: JobControl, error: Exception | None) -> None:
        """Record a job that produced no clip (or one nobody wants any more) and remove its files.

        Precedence: a lost lease records nothing (the job is another worker's now, its files too); a cancel or
        delete ends it ``cancelled``, whatever stopped it (nobody runs such a job again, so its files go even if
        the store had already ended it); a stop the job raised for its time limit fails it with ``time_limit``;
        a worker shutting down hands it back to the queue; anything else it raised fails it with the code
        :func:`~dreamreel.worker.faults.classify` gives. A failure removes the files only when the store took
        it: a refused write means the lease lapsed and another worker may be writing there now."""
        if control.lease_lost:
            log.warning("%s: lost the lease; outcome and files left to its new owner", job.id)
            return
        cancelled = isinstance(error, GenerationCancelled)
        if control.cancel_requested:
            log.info("%s cancelled (%s); its files are removed", job.id, error or "after encoding")
            self._stored(self.store.finish_cancelled, job.id, self.worker_id)
            self.metrics.ended("cancelled", job)
            owned = True
        elif cancelled and control.timed_out():
            log.warning("%s stopped at its time limit of %.1fs: %s", job.id, control.limit_s, error)
            owned = self._stored(self.store.fail, job.id, self.worker_id, FailureCode.TIME_LIMIT,
                                 limit_reason(control.limit_s))
            self.metrics.ended("failed", job, FailureCode.TIME_LIMIT.value)
        elif cancelled and self.stop_event.is_set():  # shutting down: hand the job straight back to the queue
            self._stored(self.store.release, job.id, self.worker_id)
            self.metrics.ended("released", job)
            return  # a new owner may already be writing to its directory
        else:
            assert error is not None
            code, reason = classify(error, context=self._memory_context(job, control))
            if code is FailureCode.INPUT:
                log.warning("generation %s: %s", job.id, error)
            else:
                log.error("generation %s failed (%s): %s", job.id, code.value,
                          "".join(traceback.format_exception(error)))
            owned = self._stored(self.store.fail, job.id, self.worker_id, code, reason)
            self.metrics.ended("failed", job, code.value)
        if owned:
            self.files.delete_generation(job.id)

