"""Several API nodes, one provisioned webhook key: a callback one node signs verifies against any node's JWKS.

Real key files, a real SQLite database shared by two apps with their own data directories, a real
loopback receiver; ``dreamreel serve`` itself for the refusal to start on an unusable key file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from tests.acceptance.receiver import Receiver, verifies_with_jwks
from tests.conftest import DREAMREEL, free_port, wait_for

from dreamreel.api.app import create_app
from dreamreel.config import SettingError, Settings
from dreamreel.core.failures import FailureCode
from dreamreel.store import open_store

ENV_NAME = "DREAMREEL_WEBHOOK_SIGNING_KEY_FILE"


def _write_pkcs8(path: Path, key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _settings(tmp_path: Path, node: str, key_file: Path | None) -> Settings:
    return Settings(data_dir=tmp_path / node, database_url=f"sqlite:///{tmp_path / 'shared.db'}",
                    storage_dir=tmp_path / "files", webhook_signing_key_file=key_file,
                    allow_private_urls=True, poll_seconds=0.05)


def test_nodes_sharing_a_key_file_publish_one_jwks_and_verify_each_others_webhooks(tmp_path: Path) -> None:
    key_file = _write_pkcs8(tmp_path / "webhook.pem", Ed25519PrivateKey.generate())
    receiver = Receiver()
    try:
        node_a = create_app(_settings(tmp_path, "node-a", key_file))  # delivers callbacks (its dispatcher runs)
        node_b = create_app(_settings(tmp_path, "node-b", key_file), run_dispatcher=False)
        with TestClient(node_a) as client_a, TestClient(node_b) as client_b:
            jwks_a = client_a.get("/.well-known/jwks.json").json()
            jwks_b = client_b.get("/.well-known/jwks.json").json()
            assert jwks_a == jwks_b and len(jwks_b["keys"]) == 1

            # Submitted through node B, finished by a worker, delivered by node A's dispatcher.
            submitted = client_b.post("/fal-ai/luma-dream-machine/ray-2", params={"fal_webhook": receiver.url},
                                      json={"prompt": "a red ball"})
            assert submitted.status_code == 200, submitted.text
            request_id = submitted.json()["request_id"]
            store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
            job = store.claim("worker-1", 30.0)
            assert job is not None and job.id == request_id
            assert store.fail(job.id, "worker-1", FailureCode.INPUT, "keyframes.frame0: not an image")
            wait_for(lambda: len(receiver.deliveries) == 1, timeout=30)

        body, headers = receiver.deliveries[0]
        assert headers["x-fal-webhook-request-id"] == request_id
        assert verifies_with_jwks(jwks_b, headers, body)
        assert not verifies_with_jwks(jwks_b, headers, body + b" ")
    finally:
        receiver.close()
    # The provisioned key is only read: no node made one of its own.
    assert not (tmp_path / "node-a" / "keys" / "webhook-ed25519.pem").exists()
    assert not (tmp_path / "node-b" / "keys" / "webhook-ed25519.pem").exists()

    # Without the setting a node creates its own key, which the shared JWKS does not contain.
    own = create_app(_settings(tmp_path, "node-c", None), run_dispatcher=False)
    assert (tmp_path / "node-c" / "keys" / "webhook-ed25519.pem").is_file()
    with TestClient(own) as client_c:
        assert client_c.get("/.well-known/jwks.json").json() != jwks_b


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_key_made_by_openssl_genpkey_loads(tmp_path: Path) -> None:
    """The command docs/deploy.md gives makes a file the server accepts."""
    key_file = tmp_path / "webhook.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key_file)], check=True)
    with TestClient(create_app(_settings(tmp_path, "node", key_file), run_dispatcher=False)) as client:
        assert client.get("/.well-known/jwks.json").json()["keys"][0]["crv"] == "Ed25519"


def _bad_key_files(tmp_path: Path) -> dict[str, Path]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    public_only = tmp_path / "public.pem"
    public_only.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return {
        "missing": tmp_path / "absent.pem",
        "directory": tmp_path,
        "garbage": garbage,
        "encrypted": encrypted,
        "public key": public_only,
        "wrong type": _write_pkcs8(tmp_path / "p256.pem", ec.generate_private_key(ec.SECP256R1())),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "garbage", "encrypted", "public key", "wrong type"])
def test_unusable_key_file_is_a_startup_error_naming_the_setting(tmp_path: Path, case: str) -> None:
    key_file = _bad_key_files(tmp_path)[case]
    with pytest.raises(SettingError, match=ENV_NAME) as raised:
        create_app(_settings(tmp_path, "node", key_file), run_dispatcher=False)
    assert str(key_file) in str(raised.value)
    assert not (tmp_path / "node" / "keys" / "webhook-ed25519.pem").exists()  # no silent replacement key


def test_serve_refuses_to_start_on_an_unusable_key_file(tmp_path: Path) -> None:
    key_file = _write_pkcs8(tmp_path / "p256.pem", ec.generate_private_key(ec.SECP256R1()))
    result = subprocess.run(
        [DREAMREEL, "serve", "--workers", "0", "--host", "127.0.0.1", "--port", str(free_port()),
         "--data-dir", str(tmp_path / "data")],
        env={"PATH": "/usr/bin:/bin", ENV_NAME: str(key_file)}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert ENV_NAME in result.stderr and "not an Ed25519 private key" in result.stderr
    assert not (tmp_path / "data" / "keys" / "webhook-ed25519.pem").exists()
