"""Deliver callbacks from the durable outbox: at-least-once, retried with exponential backoff, fair across
destinations.

State changes write an outbox row in the same transaction (``core.jobstore``), so a crash between
"completed" and "told the client" only delays the callback. Rows hold a snapshot of the generation
at that moment; the dialect that created the generation renders it at send time (``Dialect.render_callback``).

**Fairness.** One tenant's slow receiver must not delay another's callbacks. Deliveries are grouped by
destination (``scheme://host:port``) into *lanes*: a lane sends one request at a time, in the order its
deliveries were claimed, and up to ``webhook_concurrency`` lanes send side by side on their own threads.
A receiver that answers slowly (or only at the timeout) holds its own lane and nothing else. Deliveries of
one generation all go to its one ``callback_url``, hence one lane, and the outbox hands out only the earliest
unfinished one per generation, so their order holds.

**Leases.** A claimed delivery is hidden from other claimers (other API nodes) for its lease while it waits
in its lane and is sent. A lane holds at most :data:`LANE_DEPTH` deliveries, each sent within about
``webhook_timeout_seconds``, so the lease is ``LANE_DEPTH x timeout + 5 s``; a delivery that finds its lane
full, or every lane thread busy with other destinations, is handed straight back (``defer_deliveries``: no
attempt counted) and claimed again :data:`DEFER_S` later. A node that dies with deliveries in its lanes
leaves them to be sent by another node once their leases lapse.

The same thread also runs the store's ``housekeep`` and, with ``retention_days`` set, retention
(``core/retention.py``), so both happen even when no worker is polling.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

import httpx

from dreamreel.api.dialects import BY_NAME
from dreamreel.api.signing import WebhookSigner
from dreamreel.api.urls import FileUrls
from dreamreel.config import Settings
from dreamreel.core.jobstore import Delivery, JobStore
from dreamreel.core.logs import generation_context, job_fields
from dreamreel.core.retention import RetentionSchedule
from dreamreel.files import LocalFiles
from dreamreel.net.fetch import PinnedTransport
from dreamreel.net.guard import BlockedURL, resolve_checked

log = logging.getLogger("dreamreel.webhooks")

DELIVERY_ID_HEADER = "X-Dreamreel-Delivery-Id"
"""Sent with every callback: delivery is at least once (a node dying mid-POST retries it from another), and a
retry carries the same id, so a receiver drops what it has seen."""

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
LANE_DEPTH = 4
"""Deliveries one destination may hold in this process (the one being sent included)."""
DEFER_S = 1.0
"""A delivery with no room in its lane is due again this much later."""
CLAIM_BATCH = 64
REQUEST_ID_HEADER = "X-Request-Id"
"""Sent with a callback of a generation created by a request that had one: the receiver can match the
callback to the request it made (and an operator to both sides' logs)."""


def backoff_seconds(attempt: int) -> float:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1))


def destination(url: str) -> str:
    """The lane a callback URL belongs to: ``scheme://host:port`` with the scheme's default port filled in."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url  # refused when sent; a lane of its own meanwhile
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return f"{parsed.scheme}://{parsed.host}:{port}"


class WebhookDispatcher:
    def __init__(self, store: JobStore, settings: Settings, signer: WebhookSigner, file_urls: FileUrls) -> None:
        self.store = store
        self.settings = settings
        self.signer = signer
        self.file_urls = file_urls
        self.stop_event = threading.Event()
        self.lease_s = LANE_DEPTH * settings.webhook_timeout_seconds + 5
        self.retention = RetentionSchedule(store, LocalFiles(settings.resolved_storage_dir),
                                           days=settings.retention_days,
                                           interval_s=settings.retention_interval_seconds)
        self.on_outcome: Callable[[str], None] = lambda outcome: None
        """Told how each attempt ended: ``delivered``, ``retry``, ``abandoned`` or ``refused`` (the metrics)."""
        self._lock = threading.Lock()
        self._lanes: dict[str, deque[Delivery]] = {}
        """Destination -> its deliveries in this process; the first is being sent. Guarded by ``_lock``."""
        self._ready: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        """Lanes waiting for a thread (None: a thread's signal to exit)."""
        self._wake = threading.Event()
        """Set when a lane finished a delivery: there may be room to claim more."""

    def run_forever(self) -> None:
        threads = [threading.Thread(target=self._run_lanes, name=f"webhook-lane-{i}", daemon=True)
                   for i in range(self.settings.webhook_concurrency)]
        for thread in threads:
            thread.start()
        try:
            while not self.stop_event.is_set():
                self._wake.clear()
                try:
                    # Also move time-based transitions along when no worker is polling (e.g. all busy).
                    self.store.housekeep()
                    self._retain()
                    taken = self.dispatch_due()
                except Exception:  # the dispatcher must outlive a bad row or a locked database
                    log.exception("webhook dispatch round failed")
                    taken = 0
                if not taken:
                    self._wake.wait(self.settings.poll_seconds)
        finally:
            for _ in threads:
                self._ready.put(None)

    def _retain(self) -> None:
        report = self.retention.run_if_due()
        if report is not None and report.items:
            log.info("retention deleted %d generations and uploads (%d bytes) finished before %s",
                     len(report.items), report.bytes, time.strftime("%Y-%m-%d %H:%M", time.gmtime(report.cutoff)))

    def dispatch_due(self) -> int:
        """Claim what the lanes have room for and queue each delivery on its destination's lane; hand back
        what does not fit. Returns how many were queued."""
        with self._lock:
            room = sum(LANE_DEPTH - len(lane) for lane in self._lanes.values())
            room += (self.settings.webhook_concurrency - len(self._lanes)) * LANE_DEPTH
        if room <= 0:
            return 0
        deliveries = self.store.claim_deliveries(limit=min(room, CLAIM_BATCH), lease_s=self.lease_s)
        no_room = [delivery.id for delivery in deliveries if not self._enqueue(delivery)]
        if no_room:
            self.store.defer_deliveries(no_room, time.time() + DEFER_S)
        return len(deliveries) - len(no_room)

    def _enqueue(self, delivery: Delivery) -> bool:
        lane_key = destination(delivery.url)
        with self._lock:
            lane = self._lanes.get(lane_key)
            if lane is None:
                if len(self._lanes) >= self.settings.webhook_concurrency:
                    return False
                self._lanes[lane_key] = deque([delivery])
                self._ready.put(lane_key)
                return True
            if len(lane) >= LANE_DEPTH:
                return False
            lane.append(delivery)
            return True

    def _run_lanes(self) -> None:
        """A lane thread: send one ready lane's deliveries until it is empty, then take the next lane."""
        while (lane_key := self._ready.get()) is not None:
            self._drain(lane_key)

    def _drain(self, lane_key: str) -> None:
        lane = self._lanes[lane_key]
        while True:
            with self._lock:
                if not lane or self.stop_event.is_set():
                    del self._lanes[lane_key]  # what is left is re-claimed when its lease lapses
                    return
                delivery = lane[0]
            try:
                self._deliver(delivery)
            except Exception:  # a store error: the lease lapses and the delivery is retried
                log.exception("webhook %s to %s could not be recorded", delivery.id, delivery.url)
            with self._lock:
                lane.popleft()
            self._wake.set()

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST to the address checked now, pinned: a second DNS answer cannot redirect us inward."""
        addresses = resolve_checked(url, allow_private=self.settings.allow_private_urls)
        host = httpx.URL(url).host
        with httpx.Client(transport=PinnedTransport({host: addresses}), follow_redirects=False,
                          timeout=self.settings.webhook_timeout_seconds) as client:
            return client.post(url, content=body, headers=headers)

    def _deliver(self, delivery: Delivery) -> None:
        """One attempt, logged under the generation's request id (core/logs.py)."""
        with generation_context(delivery.snapshot):
            outcome, error = self._attempt(delivery)
            self.on_outcome(outcome)
            level = logging.WARNING if outcome in ("abandoned", "refused") else logging.INFO
            log.log(level, "webhook %d (attempt %d) to %s: %s%s", delivery.id, delivery.attempts,
                    destination(delivery.url), outcome, f" ({error})" if error else "",
                    extra=job_fields(delivery.snapshot, "callback", status=outcome))

    def _attempt(self, delivery: Delivery) -> tuple[str, str | None]:
        """Send ``delivery`` and record what came of it: ``(outcome, error)``."""
        dialect = BY_NAME.get(delivery.snapshot.dialect)
        if dialect is None or dialect.render_callback is None:
            error = f"dialect {delivery.snapshot.dialect!r} sends no callbacks"
            self.store.delivery_failed(delivery.id, error, None)
            return "refused", error
        try:
            body, headers = dialect.render_callback(delivery.snapshot, self.file_urls, self.signer)
            headers = {**headers, DELIVERY_ID_HEADER: str(delivery.id)}
            if delivery.snapshot.request_id:
                headers[REQUEST_ID_HEADER] = delivery.snapshot.request_id
            response = self._post(delivery.url, body, headers)
            if 200 <= response.status_code < 300:
                self.store.delivery_succeeded(delivery.id)
                return "delivered", None
            error = f"HTTP {response.status_code}"
        except BlockedURL as exc:
            self.store.delivery_failed(delivery.id, str(exc), None)
            return "refused", str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if delivery.attempts >= self.settings.webhook_max_attempts:
            self.store.delivery_failed(delivery.id, error, None)
            return "abandoned", error
        self.store.delivery_failed(delivery.id, error, time.time() + backoff_seconds(delivery.attempts))
        return "retry", error
