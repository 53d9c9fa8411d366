"""``GET /metrics``: what an operator's Prometheus scrapes from an API process, in its text format.

Two kinds of series, kept apart on purpose:

* **The cluster's state, read from the store at scrape time** (:class:`StoreCollector`): jobs queued and running
  by model, live and busy workers, the webhook outbox's backlog. The store is what every API process and worker
  shares, so any API process answers the same numbers however many there are, with no shared metrics directory
  and nothing to lose when a process restarts.
* **This process's own traffic** (:class:`ApiMetrics`): HTTP requests by route template, method and status
  with a latency histogram, the jobs it queued by dialect and model, the cancels and deletes that reached
  unfinished jobs, the requests a key's own limits refused, and its webhook delivery attempts by outcome. Each
  API process exposes its own; Prometheus scrapes every API process as its own target and sums them
  (``sum by (route) (...)``).

Labels are bounded: a route's template (``/dream-machine/v1/generations/{generation_id}``), never its path; an
unmatched path is ``unmatched``; no generation id, prompt or key in any label, unless the operator asks for
per-key submission counts (``metrics_per_key``: the key's id, never its token).

Who may read it: the admin token or an admin key (``Authorization: Bearer``), or a client address inside
``metrics_allow_from`` (CIDRs; empty by default, so a public server shows nothing to the internet). Ordinary keys
get a 403. Errors use ``{"detail": ...}``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dreamreel.api.admin import is_operator
from dreamreel.api.keyring import KeyRing
from dreamreel.config import Settings
from dreamreel.core.errors import DreamreelError, Forbidden, InsufficientCredits, TooManyRequests, Unauthorized
from dreamreel.core.jobstore import JobStore

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a status poll answers in a few milliseconds, a create in tens, an upload of a video in seconds."""
UNMATCHED = "unmatched"
WEBHOOK_OUTCOMES = ("delivered", "retry", "abandoned", "refused")


class ApiMetrics:
    """This API process's own series, in a registry of its own (so apps built side by side in one process, as
    the tests do, never share or collide)."""

    def __init__(self, store: JobStore, lease_s: float, *, per_key: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("dreamreel_http_requests", "HTTP requests answered, by route template, method and "
                                "status", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("dreamreel_http_request_seconds", "Time to answer an HTTP request, by route "
                                 "template and method", ["route", "method"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.submitted = Counter("dreamreel_jobs_submitted", "Jobs this process queued, by dialect, model and kind "
                                 "(video, upscale)", ["dialect", "model", "kind"], registry=self.registry)
        self.stop_requests = Counter("dreamreel_jobs_stop_requests", "Cancels and deletes that reached an unfinished "
                                     "job, by dialect, model and the state it was in (queued: it ended then; "
                                     "running: its worker ends it, counted in dreamreel_jobs_finished_total)",
                                     ["dialect", "model", "state"], registry=self.registry)
        self.limited = Counter("dreamreel_key_limit_refusals", "Requests a key's own limits refused, by limit "
                               "(requests_per_minute, queued: a 429; credits: a 402)", ["limit"],
                               registry=self.registry)
        for limit in ("requests_per_minute", "queued", "credits"):
            self.limited.labels(limit)
        self.webhooks = Counter("dreamreel_webhook_deliveries", "Webhook delivery attempts this process made, by "
                                "outcome (delivered, retry, abandoned, refused)", ["outcome"], registry=self.registry)
        for outcome in WEBHOOK_OUTCOMES:  # at 0 from the start, so a rate() over them has a series to start from
            self.webhooks.labels(outcome)
        self.by_key = Counter("dreamreel_jobs_submitted_by_key", "Jobs this process queued, by API key id (only "
                              "with metrics_per_key)", ["key"], registry=self.registry) if per_key else None
        self.registry.register(StoreCollector(store, lease_s))

    def count_submission(self, generation: Any) -> None:
        self.submitted.labels(generation.dialect, generation.model, generation.kind.value).inc()
        if self.by_key is not None:
            self.by_key.labels(generation.owner).inc()

    def count_refusal(self, error: DreamreelError) -> None:
        """An error answered to a client: a key's limit refusing it is counted by that limit."""
        if isinstance(error, TooManyRequests):
            self.limited.labels(error.limit).inc()
        elif isinstance(error, InsufficientCredits):
            self.limited.labels("credits").inc()

    def count_stop(self, before: Any) -> None:
        self.stop_requests.labels(before.dialect, before.model, before.state.value).inc()


class StoreCollector(Collector):
    """The cluster's state from the store, read when Prometheus scrapes."""

    def __init__(self, store: JobStore, lease_s: float) -> None:
        self.store = store
        self.lease_s = lease_s

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("dreamreel_jobs", "Generations queued or running, by state and model",
                                 labels=["state", "model"])
        for state, model, count in self.store.queue_counts():
            jobs.add_metric([state, model], count)
        yield jobs
        workers = self.store.list_workers(alive_within_s=self.lease_s)
        alive = GaugeMetricFamily("dreamreel_workers", "Workers seen within the lease, by whether they hold a job",
                                  labels=["busy"])
        busy = sum(1 for worker in workers if worker.current_job)
        alive.add_metric(["true"], busy)
        alive.add_metric(["false"], len(workers) - busy)
        yield alive
        yield GaugeMetricFamily("dreamreel_webhook_outbox_backlog", "Webhook deliveries still to make",
                                value=self.store.outbox_backlog())


class HttpMetrics:
    """Outermost ASGI middleware: counts and times every HTTP request by the template of the route that answered
    it (Starlette puts the matched route in the scope; the fast poll path does the same).

    The labelled children are kept in a dict of our own rather than looked up with ``labels()`` (which validates
    and locks) twice a request: a status poll is ~0.24 ms of CPU, and this runs on every one
    (docs/benchmarks.md, "What serving /metrics costs the polls")."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """(route, method, status) -> (its request counter, its latency histogram); bounded like the labels."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            key = (route_template(scope), scope["method"], status)
            children = self._children.get(key)
            if children is None:
                route, method, _ = key
                children = self._children[key] = (self.metrics.requests.labels(route, method, str(status)),
                                                  self.metrics.latency.labels(route, method))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/v1/videos/{video_id}``), else :data:`UNMATCHED`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    return template


def check_reader(headers: Any, client_host: str | None, settings: Settings, keyring: KeyRing) -> None:
    """Let an allowed address, the admin token or an admin key read the metrics; 401 without credentials, 403
    for an ordinary key."""
    if client_host and _allowed(client_host, settings.metrics_allow_from):
        return
    header = headers.get("authorization", "")
    if not header:
        raise Unauthorized("metrics need the admin token or an admin key (Authorization: Bearer ...), or a "
                           "client address in metrics_allow_from")
    if not is_operator(header, settings, keyring):
        raise Forbidden("metrics are for operators: send the admin token or an admin key")


def _allowed(host: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)
