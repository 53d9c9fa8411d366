"""The server's Ed25519 webhook key: signs fal-style webhooks, published as a JWKS.

fal signs webhooks with its own key; a self-hosted server cannot, so it signs the same message with
a key of its own (created once in the data directory) and publishes the public half at
``/.well-known/jwks.json`` for receivers to verify against.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """fal's layout: request id, user id, timestamp and the body's SHA-256 hex, one per line."""
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


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
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{key_path} is not an Ed25519 private key")
    return key


class WebhookSigner:
    def __init__(self, key_path: Path) -> None:
        self._key = load_or_create_key(key_path)
        self._public = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(self._public).hexdigest()[:16]

    def sign(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
        """Hex-encoded Ed25519 signature, as in fal's ``X-Fal-Webhook-Signature``."""
        return self._key.sign(signed_message(request_id, user_id, timestamp, body)).hex()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(self._public), "kid": self.key_id,
                          "use": "sig", "alg": "EdDSA"}]}
