"""A worker's own Prometheus metrics, served on its own port (``worker_metrics_port``; ``serve`` gives its i-th
worker that port + i): how long each stage of a job takes, how jobs end, how long models take to load, how much
memory the process has needed, whether it is busy. The port answering is also the worker's liveness for a
supervisor.

Why a port per worker and not one shared registry: workers run on other machines as often as beside the API
(``dreamreel worker`` against PostgreSQL), and a worker's process is where the stage times are known. The
cluster-wide queue and worker counts come from the store through the API's ``/metrics`` (api/metrics.py).

Stages (seconds, by ``model``, ``resolution`` and ``duration`` in whole seconds): ``queue_wait`` (submitted to
claimed), ``denoise`` (claimed to the last denoising step: inputs, text encoding and the steps), ``decode_encode``
(the last step to the MP4 written: the VAE decode and the H.264 encode overlap, frames streaming into the
encoder, so they are one stage), ``run`` (claimed to written) and ``end_to_end`` (submitted to completed). Files
are written to the shared storage directly, so there is no upload stage.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dreamreel.core.logs import job_fields

log = logging.getLogger("dreamreel.worker")

STAGE_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)
"""Seconds: a clip of the embedded model takes seconds on a CPU, a 9 s 1080p clip of a 14B model many minutes."""


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage = Histogram("dreamreel_job_stage_seconds", "Seconds a job spent in each stage",
                               ["stage", "model", "resolution", "duration"], buckets=STAGE_BUCKETS,
                               registry=self.registry)
        self.finished = Counter("dreamreel_jobs_finished", "Jobs this worker ended, by outcome (completed, failed, "
                                "cancelled, released), dialect, model and failure code",
                                ["outcome", "dialect", "model", "failure_code"], registry=self.registry)
        self.busy = Gauge("dreamreel_worker_busy", "1 while this worker runs a job", registry=self.registry)
        self.model_load = Gauge("dreamreel_model_load_seconds", "Seconds the last load of each model took",
                                ["model"], registry=self.registry)
        self.peak_rss = Gauge("dreamreel_worker_peak_rss_bytes", "Peak resident memory of this worker process",
                              registry=self.registry)
        self.peak_rss.set_function(peak_rss_bytes)
        self.gpu_peak = Gauge("dreamreel_worker_gpu_peak_bytes", "Peak GPU memory torch allocated in this process "
                              "(0 without CUDA)", registry=self.registry)
        self.gpu_peak.set_function(gpu_peak_bytes)

    def serve(self, host: str, port: int) -> None:
        """Answer scrapes on ``host:port`` from a daemon thread (any path: the metrics)."""
        start_http_server(port, addr=host, registry=self.registry)

    def observe(self, stage: str, job: Any, seconds: float) -> None:
        request = job.request
        self.stage.labels(stage, job.model, request.resolution.value, str(request.duration_s)).observe(
            max(0.0, seconds))

    def ended(self, outcome: str, job: Any, failure_code: str = "") -> None:
        self.finished.labels(outcome, job.dialect, job.model, failure_code).inc()


class JobClock:
    """The moments of one job the stage times are cut from."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.claimed = time.time()
        self.last_step: float | None = None

    def on_step(self, step: int, total: int) -> None:
        if step >= total:
            self.last_step = time.time()

    def record_run(self, metrics: WorkerMetrics) -> None:
        """After the clip is written: queue wait, denoise, decode + encode and the run."""
        now = time.time()
        job = self.job
        self._stage(metrics, "queue_wait", (job.started_at or self.claimed) - job.created_at)
        if self.last_step is not None:
            self._stage(metrics, "denoise", self.last_step - self.claimed)
            self._stage(metrics, "decode_encode", now - self.last_step)
        self._stage(metrics, "run", now - self.claimed)

    def record_completed(self, metrics: WorkerMetrics) -> None:
        self._stage(metrics, "end_to_end", time.time() - self.job.created_at)

    def _stage(self, metrics: WorkerMetrics, stage: str, seconds: float) -> None:
        """Into the stage histogram and onto one log line (with the job's request id: core/logs.py)."""
        metrics.observe(stage, self.job, seconds)
        job = self.job
        log.info("%s %s: %.3f s", job.id, stage, seconds,
                 extra=job_fields(job, stage, duration_s=round(max(0.0, seconds), 3)))


def peak_rss_bytes() -> float:
    """``ru_maxrss`` is KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)


def gpu_peak_bytes() -> float:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return 0.0
    return float(sum(torch.cuda.max_memory_allocated(device) for device in range(torch.cuda.device_count())))
