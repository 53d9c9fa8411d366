"""The server secret every API node shares, and the purpose-bound keys derived from it.

One file rather than one setting per key: an operator provisions a single secret on every node (or lets
nodes that share a data directory share the one created there), and each use gets its own key derived with
HMAC-SHA256 over a purpose label, so a key leaked from one use (say a signed URL scheme) says nothing about
another (the pepper of API-key hashes).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from dreamreel.config import SettingError, Settings

MIN_SECRET_BYTES = 32

API_KEY_PEPPER = "api-key-pepper"
FILE_URL_SIGNING = "file-url-signing"


def load_server_secret(settings: Settings) -> bytes:
    """The provisioned ``secret_key_file`` (only read: a missing or short file is a :class:`SettingError`),
    else ``<data_dir>/keys/server.key``, created once with mode 0600."""
    path = settings.secret_key_file
    if path is not None:
        try:
            secret = Path(path).read_bytes()
        except OSError as exc:
            raise SettingError(f"DREAMREEL_SECRET_KEY_FILE (secret_key_file): cannot read {path}: {exc}") from exc
        if len(secret) < MIN_SECRET_BYTES:
            raise SettingError(f"DREAMREEL_SECRET_KEY_FILE (secret_key_file): {path} holds {len(secret)} bytes; "
                               f"at least {MIN_SECRET_BYTES} random bytes are needed")
        return secret
    return _load_or_create(settings.data_dir / "keys" / "server.key")


def _load_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    candidate.write_bytes(secrets.token_bytes(MIN_SECRET_BYTES))
    candidate.chmod(0o600)
    try:
        os.link(candidate, path)  # atomic and refuses to replace: two nodes starting at once agree on one file
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return path.read_bytes()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose (``API_KEY_PEPPER``, ``FILE_URL_SIGNING``)."""
    return hmac.new(secret, b"dreamreel/" + purpose.encode(), hashlib.sha256).digest()
