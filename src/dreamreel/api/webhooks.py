"""Deliver callbacks from the durable outbox: at-least-once, retried with exponential backoff.

State changes write an outbox row in the same transaction (``core.jobstore``), so a crash between
"completed" and "told the client" only delays the callback. Rows hold a snapshot of the generation
at that moment; the dialect that created the generation renders it at send time (``Dialect.render_callback``).
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from dreamreel.api.dialects import BY_NAME
from dreamreel.api.signing import WebhookSigner
from dreamreel.config import Settings
from dreamreel.core.jobstore import Delivery, JobStore
from dreamreel.net.fetch import PinnedTransport
from dreamreel.net.guard import BlockedURL, resolve_checked

log = logging.getLogger("dreamreel.webhooks")

DELIVERY_ID_HEADER = "X-Dreamreel-Delivery-Id"
"""Sent with every callback: delivery is at least once (a node dying mid-POST retries it from another), and a
retry carries the same id, so a receiver drops what it has seen."""

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0


def backoff_seconds(attempt: int) -> float:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1))


class WebhookDispatcher:
    def __init__(self, store: JobStore, settings: Settings, signer: WebhookSigner) -> None:
        self.store = store
        self.settings = settings
        self.signer = signer
        self.stop_event = threading.Event()

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            try:
                # Also move time-based transitions along when no worker is polling (e.g. all busy).
                self.store.housekeep()
                sent = self.deliver_due()
            except Exception:  # the dispatcher must outlive a bad row or a locked database
                log.exception("webhook dispatch round failed")
                sent = 0
            if not sent:
                self.stop_event.wait(self.settings.poll_seconds)

    def deliver_due(self) -> int:
        deliveries = self.store.claim_deliveries(limit=20, lease_s=self.settings.webhook_timeout_seconds + 5)
        for delivery in deliveries:
            self._deliver(delivery)
        return len(deliveries)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST to the address checked now, pinned: a second DNS answer cannot redirect us inward."""
        addresses = resolve_checked(url, allow_private=self.settings.allow_private_urls)
        host = httpx.URL(url).host
        with httpx.Client(transport=PinnedTransport({host: addresses}), follow_redirects=False,
                          timeout=self.settings.webhook_timeout_seconds) as client:
            return client.post(url, content=body, headers=headers)

    def _deliver(self, delivery: Delivery) -> None:
        dialect = BY_NAME.get(delivery.snapshot.dialect)
        if dialect is None or dialect.render_callback is None:
            self.store.delivery_failed(delivery.id, f"dialect {delivery.snapshot.dialect!r} sends no callbacks", None)
            return
        try:
            body, headers = dialect.render_callback(delivery.snapshot, self.settings.resolved_public_url, self.signer)
            headers = {**headers, DELIVERY_ID_HEADER: str(delivery.id)}
            response = self._post(delivery.url, body, headers)
            if 200 <= response.status_code < 300:
                self.store.delivery_succeeded(delivery.id)
                return
            error = f"HTTP {response.status_code}"
        except BlockedURL as exc:
            self.store.delivery_failed(delivery.id, str(exc), None)
            return
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if delivery.attempts >= self.settings.webhook_max_attempts:
            log.warning("giving up on webhook %s to %s: %s", delivery.id, delivery.url, error)
            self.store.delivery_failed(delivery.id, error, None)
        else:
            self.store.delivery_failed(delivery.id, error, time.time() + backoff_seconds(delivery.attempts))
