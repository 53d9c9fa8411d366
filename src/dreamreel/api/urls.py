"""Storage keys -> signed, expiring file URLs on the configured public URL; and the check the files route makes.

A file URL is a capability: whoever holds it may GET the file, with no headers (the seeds' clients download
``video.url`` with a plain GET), until it expires. The form is ``<public_url>/files/<key>?exp=<unix s>&sig=<s>``,
``sig`` being the first 16 bytes of HMAC-SHA256 over ``"<path>\\n<exp>"`` (urlsafe base64, unpadded) under a key
derived from the server secret, so every API node that shares the secret accepts what any of them signed.

Two choices that matter to clients and operators:

- **Expiry rounded up to a bucket.** ``exp = ceil((now + ttl) / bucket) * bucket`` with
  ``bucket = min(3600 s, ttl)``: every URL for one file is the same string for a whole bucket, so clients that
  cache by URL (and polls every second) do not see a new URL each time; a URL lives at least ``ttl`` and less
  than ``ttl + bucket``.
- **Built from the configured public URL** (``Settings.resolved_public_url``), never from the request's
  ``Host`` header, which the caller controls.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import Request

from dreamreel.api.server_secret import FILE_URL_SIGNING, derive_key, load_server_secret
from dreamreel.config import Settings

FILES_PREFIX = "/files/"
EXPIRY_BUCKET_S = 3600
SIG_BYTES = 16
"""128 bits of the HMAC: far beyond guessing, and a short URL."""
MAX_EXP_DIGITS = 12
"""An ``exp`` longer than this is refused before it is parsed (no year-30000 URLs, no 5,000-digit integers)."""


@dataclass(frozen=True)
class FileUrls:
    """Signs the file URLs this server hands out and checks the ones it is asked for."""

    public_url: str
    signing_key: bytes = field(repr=False)
    ttl_seconds: int
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(cls, settings: Settings) -> FileUrls:
        """Built once per process (``app.state.file_urls``): reads or creates the server secret."""
        key = derive_key(load_server_secret(settings), FILE_URL_SIGNING)
        return cls(settings.resolved_public_url.rstrip("/"), key, settings.file_url_ttl_seconds)

    @property
    def bucket_seconds(self) -> int:
        return min(EXPIRY_BUCKET_S, self.ttl_seconds)

    def expiry(self) -> int:
        """``ceil((now + ttl) / bucket) * bucket``: the same for every URL signed within one bucket."""
        bucket = self.bucket_seconds
        return -(-int(self.clock() + self.ttl_seconds) // bucket) * bucket

    def url(self, key: str | None, *, exp: int | None = None) -> str | None:
        """The signed URL of a stored file (``None`` for no file); ``exp`` overrides the computed expiry."""
        if not key:
            return None
        path = FILES_PREFIX + quote(key)
        exp = self.expiry() if exp is None else exp
        return f"{self.public_url}{path}?exp={exp}&sig={self._signature(path, exp)}"

    def seconds_left(self, key: str, exp: str | None, sig: str | None) -> int | None:
        """Seconds until a valid URL for ``key`` expires; ``None`` when it is unsigned, tampered or expired."""
        if exp is None or sig is None or not (exp.isascii() and exp.isdigit()) or len(exp) > MAX_EXP_DIGITS:
            return None
        expected = self._signature(FILES_PREFIX + quote(key), int(exp))
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            return None
        left = int(exp) - int(self.clock())
        return left if left > 0 else None

    def _signature(self, path: str, exp: int) -> str:
        mac = hmac.new(self.signing_key, f"{path}\n{exp}".encode(), hashlib.sha256).digest()[:SIG_BYTES]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def file_urls(request: Request) -> FileUrls:
    """The app's :class:`FileUrls` (``app.state.file_urls``), for routes that render asset URLs."""
    return request.app.state.file_urls
