"""Deliver callbacks from the durable outbox: at-least-once, retried with exponential backoff.

State changes write an outbox row in the same transaction (see the store), so a crash between
"completed" and "told the client" only delays the callback. Rows hold a snapshot of the generation
at that moment; the dialect that created the generation renders it at send time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from dreamreel.api.dialects import fal, luma
from dreamreel.api.signing import WebhookSigner
from dreamreel.config import Settings
from dreamreel.core.generation import Generation
from dreamreel.net.fetch import PinnedTransport
from dreamreel.net.guard import BlockedURL, resolve_checked
from dreamreel.store.base import Delivery, JobStore

log = logging.getLogger("dreamreel.webhooks")

Notification = tuple[bytes, dict[str, str]]
"""A rendered webhook: the exact body bytes and the headers to send with them."""

Renderer = Callable[[Generation, str], Notification]


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def luma_notification(generation: Generation, base_url: str) -> Notification:
    """Luma: the Generation object, unsigned (Luma documents no signature)."""
    return _json(luma.render_generation(generation, base_url)), {"content-type": "application/json"}


def fal_notification(signer: WebhookSigner) -> Renderer:
    """fal: its webhook payload, signed over request id, user id, timestamp and body hash."""

    def render(generation: Generation, base_url: str) -> Notification:
        body = _json(fal.webhook_payload(generation, base_url))
        timestamp = str(int(time.time()))
        return body, {
            "content-type": "application/json",
            "X-Fal-Webhook-Request-Id": generation.id,
            "X-Fal-Webhook-User-Id": generation.owner,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": signer.sign(generation.id, generation.owner, timestamp, body),
        }

    return render

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0


def backoff_seconds(attempt: int) -> float:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1))


class WebhookDispatcher:
    def __init__(self, store: JobStore, settings: Settings, signer: WebhookSigner) -> None:
        self.store = store
        self.settings = settings
        self.stop_event = threading.Event()
        self.renderers: dict[str, Renderer] = {
            "luma-callback": luma_notification,
            "fal-callback": fal_notification(signer),
        }

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
        renderer = self.renderers.get(delivery.kind)
        if renderer is None:
            self.store.delivery_failed(delivery.id, f"no renderer for {delivery.kind}", None)
            return
        try:
            body, headers = renderer(delivery.snapshot, self.settings.resolved_public_url)
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
