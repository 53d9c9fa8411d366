"""Process settings: every option is a ``DREAMREEL_*`` environment variable and a CLI flag."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "embedded"
"""The embedded default model: trained here by ``dreamreel-lab train`` and committed (docs/model-card.md)."""
TINY_MODEL_DIR = REPO_ROOT / "models" / "tiny-ltx"
"""Where ``dreamreel build-tiny-model`` puts the tiny random model (tests and benchmarks of code paths)."""


class SettingError(ValueError):
    """A setting's value cannot be used (the message names the ``DREAMREEL_*`` variable)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DREAMREEL_", extra="ignore")

    data_dir: Path = Path("data")
    """Holds the SQLite database and the generated files (unless overridden below)."""
    database_url: str | None = None
    """Defaults to ``sqlite:///<data_dir>/dreamreel.db``."""
    storage_dir: Path | None = None
    """Defaults to ``<data_dir>/files``."""
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    """Base URL clients reach this server at, used in asset URLs of webhooks; defaults to http://host:port."""
    tls_self_signed: bool = False
    """Serve https with a certificate from a local CA created in ``<data_dir>/tls`` (trust ``ca.pem``)."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    """Serve https with this certificate chain and key instead."""
    workers: int = Field(default=1, ge=0, le=64)
    """Worker processes ``serve`` starts (each loads the model once and keeps it)."""

    model_dir: Path = DEFAULT_MODEL_DIR
    """Checkpoint directory behind the public names ``ray-2`` and ``ray-flash-2``."""
    device: str = "cpu"
    dtype: str = "float32"
    steps: int | None = Field(default=None, ge=1, le=1000)
    """Override the checkpoint's default denoising steps (a speed/quality trade-off)."""

    lease_seconds: float = Field(default=30.0, gt=0)
    """A running job whose worker has not heart-beaten for this long is handed to another worker."""
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    poll_seconds: float = Field(default=0.5, gt=0)
    """How often an idle worker looks for work."""
    progress_interval_seconds: float = Field(default=0.5, ge=0)
    """Progress is persisted at most this often (plus the final step)."""
    preview_interval_seconds: float = Field(default=2.0, ge=0)
    """Luma ``progress_video``: a preview MP4 at most this often while denoising (0 turns previews off);
    also spaced by 4x each preview's own cost, so they stay a bounded share of the job."""

    api_keys: list[str] = []
    """Accepted bearer/key tokens; empty means no authentication (a local, single-user server)."""
    admin_token: str | None = None
    """Token for the operator routes (``GET /admin/workers``), sent as ``Authorization: Bearer <token>`` and
    compared in constant time. Unset: those routes answer 404 as if absent (a loopback check would be no
    protection behind a reverse proxy, so there is none). Not one of ``api_keys``: a client key is no admin."""
    max_body_bytes: int = 16 * 1024 * 1024
    allow_private_urls: bool = False
    """Let callbacks and image fetches reach loopback/private addresses (tests, trusted LANs)."""
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 8
    webhook_signing_key_file: Path | None = None
    """Ed25519 private key (PEM, PKCS8, unencrypted: ``openssl genpkey -algorithm ed25519 -out webhook.pem``)
    that signs fal-style webhooks and is published at ``/.well-known/jwks.json``. Give every API node the
    same file so a callback sent by one verifies against the JWKS of any; it is only read, never created,
    and an unusable file stops the server at startup. Unset: a key created once in ``<data_dir>/keys/``."""

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'dreamreel.db'}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "files"

    @property
    def resolved_public_url(self) -> str:
        scheme = "https" if self.tls_enabled else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def tls_enabled(self) -> bool:
        return self.tls_self_signed or self.tls_cert is not None
