"""Who is calling: API keys issued into the store, the bootstrap keys of ``DREAMREEL_API_KEYS``, or nobody.

A stored key is ``<key-id>.<secret>``. Only ``HMAC-SHA256(pepper, secret)`` is kept, with the pepper derived
from the server secret (``api/server_secret.py``) rather than stored beside the hashes: one hash per request
is microseconds, where a password hash (bcrypt) would cost every request tens of milliseconds, and a secret
of 32 random bytes needs no slow hash to resist guessing. Lookups are cached for ``key_cache_seconds``, so a
revocation or a changed limit reaches every API node within that time (2 s by default).

Bootstrap keys are compared in constant time and keep the owner ids they always had
(``key-<sha256(token)[:16]>``); they have no limits and no credit. A server with no key of either kind
serves one local user (``LOCAL_OWNER``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from dreamreel.core.accounts import ApiKey, KeyLimits
from dreamreel.core.errors import Unauthorized
from dreamreel.core.jobstore import JobStore

LOCAL_OWNER = "local"
"""Owner of every generation when the server has no keys at all (one trusted user)."""

MAX_TOKEN_CHARS = 512
KEY_ID_PREFIX = "dk"


@dataclass(frozen=True)
class Caller:
    """The identity a request acts as, and the limits that apply to it."""

    owner: str
    key_id: str | None = None
    """The stored key's id; None for a bootstrap key or a keyless server."""
    admin: bool = False
    limits: KeyLimits = field(default_factory=KeyLimits)


LOCAL_CALLER = Caller(owner=LOCAL_OWNER)


def bootstrap_owner(token: str) -> str:
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def hash_secret(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def issue_key(
    store: JobStore, pepper: bytes, *, name: str, limits: KeyLimits, admin: bool = False
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the token (``<key-id>.<secret>``), which exists nowhere else."""
    key_id = KEY_ID_PREFIX + secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(key_id=key_id, name=name, owner=f"key-{key_id}", secret_hash=hash_secret(pepper, secret),
                 created_at=time.time(), admin=admin, limits=limits)
    return store.create_key(key), f"{key_id}.{secret}"


class KeyRing:
    """Resolves ``Authorization`` tokens to callers; shared by every request of one API process."""

    def __init__(self, store: JobStore, pepper: bytes, bootstrap: list[str], cache_s: float) -> None:
        self.store = store
        self.pepper = pepper
        self.bootstrap = [token.encode() for token in bootstrap if token]
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}
        self._has_keys: tuple[float, bool] = (-1.0, False)

    def auth_required(self, *, cached_only: bool = False) -> bool:
        """Whether any key exists (revoked ones count: revoking the last key must not open the server)."""
        if self.bootstrap:
            return True
        checked_at, has = self._has_keys
        now = time.monotonic()
        if now - checked_at > self.cache_s:
            if cached_only:
                raise _NeedsStore
            has = bool(self.store.list_keys())
            self._has_keys = (now, has)
        return has

    def resolve_cached(self, header: str | None) -> Caller | None:
        """:meth:`resolve` from the cache alone, without the store (so the event loop may call it); None when
        the answer needs the store (a cache entry expired): then call :meth:`resolve` in a thread."""
        try:
            return self.resolve(header, cached_only=True)
        except _NeedsStore:
            return None

    def resolve(self, header: str | None, *, cached_only: bool = False) -> Caller:
        """The caller named by an ``Authorization`` header (``Bearer <token>`` or fal's ``Key <token>``);
        ``Unauthorized`` when keys are required and the token is missing, malformed, unknown or revoked."""
        if not self.auth_required(cached_only=cached_only):
            return LOCAL_CALLER
        token = _token_from(header)
        if token is None:
            raise Unauthorized("missing or invalid API key (send Authorization: Bearer <key>)")
        raw = token.encode()
        if any(hmac.compare_digest(raw, known) for known in self.bootstrap):
            return Caller(owner=bootstrap_owner(token))
        key_id, _, secret = token.partition(".")
        key = self._lookup(key_id, cached_only=cached_only) if secret else None
        if key is None or not key.active or not hmac.compare_digest(hash_secret(self.pepper, secret), key.secret_hash):
            raise Unauthorized("missing or invalid API key (send Authorization: Bearer <key>)")
        return Caller(owner=key.owner, key_id=key.key_id, admin=key.admin, limits=key.limits)

    def _lookup(self, key_id: str, *, cached_only: bool = False) -> ApiKey | None:
        now = time.monotonic()
        with self._lock:
            cached = self._keys.get(key_id)
        if cached is not None and now - cached[0] <= self.cache_s:
            return cached[1]
        if cached_only:
            raise _NeedsStore
        key = self.store.get_key(key_id)
        with self._lock:
            if len(self._keys) > 10_000:  # unknown ids are cached too: bound what a guesser can fill
                self._keys.clear()
            self._keys[key_id] = (now, key)
        return key


class _NeedsStore(Exception):
    """A cache entry :meth:`KeyRing.resolve_cached` would need has expired."""


def _token_from(header: str | None) -> str | None:
    """The token of ``Bearer <token>`` / ``Key <token>``, or None when absent or not printable ASCII (a
    header's bytes arrive as latin-1 text: anything outside ASCII cannot be one of our keys)."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "key") or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    if not (token.isascii() and token.isprintable()):
        return None
    return token
