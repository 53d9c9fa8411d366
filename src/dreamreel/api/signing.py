"""The server's Ed25519 webhook key: signs fal-style webhooks, published as a JWKS.

fal signs webhooks with its own key; a self-hosted server cannot, so it signs the same message with
a key of its own and publishes the public half at ``/.well-known/jwks.json`` for receivers to verify
against. The key is either a file the operator provides (``webhook_signing_key_file``: the same on every
API node, only read) or one created once in the data directory.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """fal's layout: request id, user id, timestamp and the body's SHA-256 hex, one per line."""
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or not an unencrypted Ed25519 private key."""


def load_key(key_path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``key_path`` (PEM, unencrypted); never creates one."""
    try:
        pem = key_path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {key_path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # not PEM, encrypted, or an unknown type
        raise KeyFileError(f"{key_path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{key_path} is not an Ed25519 private key (it holds {type(key).__name__})")
    return key


def load_or_create_key(key_path: Path) -> Ed25519PrivateKey:
    """The key in ``key_path``, created on first use; concurrent first uses agree on one key."""
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        try:
            os.link(tmp, key_path)  # atomic: the first process to link wins, the others load its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return load_key(key_path)


class WebhookSigner:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(self._public).hexdigest()[:16]

    def sign(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
        """Hex-encoded Ed25519 signature, as in fal's ``X-Fal-Webhook-Signature``."""
        return self._key.sign(signed_message(request_id, user_id, timestamp, body)).hex()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(self._public), "kid": self.key_id,
                          "use": "sig", "alg": "EdDSA"}]}
