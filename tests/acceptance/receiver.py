"""A loopback webhook receiver for the callback tests, and the check of a fal-style webhook signature."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Receiver:
    """A loopback HTTP endpoint that records POSTed JSON, failing the first ``fail_first`` calls; with
    ``delay_s``, each request is answered that much later (a slow tenant's receiver)."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        """Accepted deliveries: raw body and lower-cased headers."""
        self.arrived_at: list[float] = []
        """``time.time()`` at which each accepted delivery's body had been read (before any delay)."""
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["content-length"]))
                arrived = time.time()
                receiver.calls += 1
                if receiver.calls <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                receiver.deliveries.append((body, {k.lower(): v for k, v in self.headers.items()}))
                receiver.arrived_at.append(arrived)
                time.sleep(delay_s)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def verifies_with_jwks(jwks: dict, headers: dict, body: bytes) -> bool:
    """Whether a fal-style webhook (lower-cased ``headers``) is signed by one of the keys in ``jwks``."""
    message = "\n".join([headers["x-fal-webhook-request-id"], headers["x-fal-webhook-user-id"],
                         headers["x-fal-webhook-timestamp"], hashlib.sha256(body).hexdigest()]).encode()
    for key in jwks["keys"]:
        public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
        try:
            public.verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message)
            return True
        except Exception:
            continue
    return False
