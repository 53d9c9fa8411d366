"""Process settings: every option is a ``DREAMREEL_*`` environment variable and a CLI flag."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dreamreel.core.edits import MAX_SOURCE_BYTES
from dreamreel.engine.catalog import Catalog, open_catalog
from dreamreel.engine.registry import FAMILIES

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

    api_nice: int = Field(default=5, ge=0, le=19)
    """How far below its workers ``serve`` puts the API's CPU priority (Linux nice, on the API's threads only; the
    workers it starts keep theirs). Under contention the scheduler then gives the generation its cores first and
    the polls what is left; on an idle machine nothing changes (docs/benchmarks.md, "The API under load")."""

    models_config: Path | None = None
    """The models config (``models.toml``, ``engine/catalog.py``): public names -> checkpoints, devices, defaults,
    LoRAs. Unset: ``model_dir`` serves every built-in name (``ray-2``, ``ray-flash-2``)."""
    model_dir: Path = DEFAULT_MODEL_DIR
    """Checkpoint directory behind the public names ``ray-2`` and ``ray-flash-2`` when no models config is set."""
    device: str | None = None
    """Torch device for every model of this process, replacing the models config's (unset: the config's, else cpu)."""
    dtype: str = "float32"
    """Without a models config, the checkpoint's dtype (a config names each model's own)."""
    steps: int | None = Field(default=None, ge=1, le=1000)
    """Override every model's default denoising steps (a speed/quality trade-off)."""
    compile: Literal["off", "regional"] = "off"
    """``regional``: each loaded model's repeated transformer blocks are compiled (``torch.compile``) and warmed up
    at load, so jobs run the compiled blocks from the first one (``engine/compile.py``; a compile failure stops
    the worker). Costs load time (``bench/bench_compile.py``); pays on GPUs."""
    compile_backend: str = "inductor"
    """The ``torch.compile`` backend for ``compile``: ``inductor`` (on the CPU it needs a C++ compiler), or
    ``aot_eager``/``eager`` (graph capture only: checks, no speed-up)."""
    compile_dynamic: bool = True
    """Compile for symbolic sizes, one graph for every request shape; false: one static graph per shape seen
    (recompiles on each new size or length; for a worker that serves one shape)."""
    max_loaded_models: int = Field(default=1, ge=1, le=16)
    """Checkpoints one worker keeps loaded at once; a request for another evicts the least recently used (its
    memory given back first). 1 suits one GPU per worker; raise it when several fit the device together."""
    torch_threads: int = Field(default=0, ge=0, le=1024)
    """CPU threads a worker's torch computes with (``torch.set_num_threads``). 0: this machine's cores split evenly
    between the ``workers`` that ``serve`` starts, at least one each: N workers on C cores then take C / N each
    instead of all C each and fighting over them (docs/benchmarks.md, "Two workers on one machine"). Give a
    ``dreamreel worker`` started beside others on one machine its share here."""

    lease_seconds: float = Field(default=30.0, gt=0)
    """A running job whose worker has not heart-beaten for this long is handed to another worker."""
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    poll_seconds: float = Field(default=0.5, gt=0)
    """How often an idle worker looks for work when nothing wakes it (PostgreSQL's NOTIFY and SQLite's wake-up
    pipes wake it within milliseconds of a job being queued; this is their fallback)."""
    progress_interval_seconds: float = Field(default=0.5, ge=0)
    """Progress is persisted at most this often (plus the final step)."""
    preview_interval_seconds: float = Field(default=2.0, ge=0)
    """Luma ``progress_video``: a preview MP4 at most this often while denoising (0 turns previews off);
    also spaced by ``preview_budget`` x each preview's own cost, and none once the steps left take less than
    this (the clip itself is nearer): ``worker/preview.py``."""
    preview_budget: float = Field(default=9.0, gt=0)
    """Work between two previews, in multiples of a preview's own cost (one VAE decode): 9 keeps previews under
    ~10 % of a job's time; lower shows more of the clip forming at the clip's expense."""

    api_keys: list[str] = []
    """Accepted bearer/key tokens; empty means no authentication (a local, single-user server)."""
    admin_token: str | None = None
    """Token for the operator routes (``GET /admin/workers``), sent as ``Authorization: Bearer <token>`` and
    compared in constant time. Unset: those routes answer 404 as if absent (a loopback check would be no
    protection behind a reverse proxy, so there is none). Not one of ``api_keys``: a client key is no admin."""
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    """A worker's own Prometheus metrics and liveness on this port (worker/metrics.py); 0: none. ``serve`` gives
    its i-th worker this port + i."""
    worker_metrics_host: str = "127.0.0.1"
    """The address a worker's metrics port listens on (``0.0.0.0`` for a Prometheus on another machine)."""
    metrics_per_key: bool = False
    """Also count submissions per API key on ``/metrics`` (``key``: the key's id, never its token). Off by default:
    a series per key grows with the keys issued."""
    metrics_allow_from: list[str] = []
    """Client networks (CIDRs, e.g. ``["10.0.0.0/8", "127.0.0.1/32"]``) that may read ``GET /metrics`` without the
    admin token; empty: only the admin token or an admin key may (api/metrics.py)."""
    max_body_bytes: int = 16 * 1024 * 1024
    max_video_bytes: int = Field(default=MAX_SOURCE_BYTES, ge=1)
    """Largest source video accepted: an upload to ``POST /uploads`` or OpenAI's ``POST /v1/videos/edits`` (those
    two routes take bodies up to this instead of ``max_body_bytes``) and a video the worker fetches."""
    allow_private_urls: bool = False
    """Let callbacks, image and source-video fetches reach loopback/private addresses (tests, trusted LANs)."""
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 8
    webhook_signing_key_file: Path | None = None
    """Ed25519 private key (PEM, PKCS8, unencrypted: ``openssl genpkey -algorithm ed25519 -out webhook.pem``)
    that signs fal-style webhooks and is published at ``/.well-known/jwks.json``. Give every API node the
    same file so a callback sent by one verifies against the JWKS of any; it is only read, never created,
    and an unusable file stops the server at startup. Unset: a key created once in ``<data_dir>/keys/``."""

    secret_key_file: Path | None = None
    """32+ random bytes every API node shares (``head -c 32 /dev/urandom > server.key``): the pepper that
    API-key hashes are keyed with and the key that signs file URLs. Only read, never created, when set.
    Unset: ``<data_dir>/keys/server.key``, created once (nodes sharing a data dir share it)."""
    insecure_no_auth: bool = False
    """Serve without any API key on a non-loopback address (every caller is the one local user)."""
    key_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    """How long an API node trusts a looked-up key: a revocation or limit change reaches every node within it."""
    file_url_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=365 * 24 * 3600)
    """Lifetime of the signed asset URLs the dialects return (``?exp=&sig=``)."""
    min_free_disk_bytes: int = Field(default=1024**3, ge=0)
    """No new job is accepted (503 + Retry-After) while the output volume has less free space than this."""

    # --- HTTP edge: connection guards ---
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """A connection's request line and headers must all arrive within this long of it opening (or of its next
    request's first byte on a kept-alive connection); else it is closed (with a 408 if a request had begun)."""
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """A request body that makes no progress for this long (no byte arrives) has its connection closed."""
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """Open client connections one API process keeps; one more is answered 503 and closed at once. Held well
    under the process's open-file limit (raised to its hard limit at start), which also bounds it."""
    max_connections_per_client: int | None = Field(default=None, ge=1)
    """Open connections one client address may hold; one more is answered 503 and closed, so one client's flood
    leaves room for the others. Unset: only ``max_connections`` applies — right behind a reverse proxy, where
    every connection comes from the proxy's address (limit per client there instead)."""
    log_repeat_limit: int = Field(default=5, ge=1, le=10_000)
    """The same warning or error (same logger and message template) is written at most this often per
    ``log_repeat_window_seconds``; the rest are counted and reported in one ``suppressed N`` line."""
    log_repeat_window_seconds: float = Field(default=10.0, gt=0, le=3600)

    # --- uploads, webhooks, retention ---
    max_image_pixels: int = Field(default=4096 * 4096, ge=1, le=8192 * 8192)
    """Largest keyframe image (width x height) accepted, read from its header before any decoding: a larger one
    is refused by ``POST /uploads`` (413) and fails its job (``input``). 16.8 MP holds a 4k frame."""
    image_decode_concurrency: int = Field(default=2, ge=1, le=64)
    """Uploads decoded at once by one API process (each up to ``max_image_pixels`` x 4 bytes); others wait."""
    upload_max_count: int = Field(default=100, ge=1)
    """Uploads one key may hold at a time; one more is a 413 until it deletes some (``DELETE /uploads/{id}``)."""
    upload_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    """Total bytes of the uploads one key may hold at a time."""
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    """Callback destinations (scheme://host:port) posted to at once; each one gets one request at a time."""
    retention_days: float | None = Field(default=None, gt=0)
    """Generations finished longer ago than this are deleted with their files, and uploads older than this
    (their ledger entries stay). Unset: kept forever. Applied hourly by every API process and by
    ``dreamreel retention``."""
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often an API process applies ``retention_days``."""

    # --- worker guards ---
    job_time_limit_seconds: float | None = Field(default=None, gt=0)
    """One wall-clock limit for every job, replacing the size-based one below (unset: derived per job)."""
    job_time_base_seconds: float = Field(default=300.0, ge=0)
    """A job's limit is this plus its delivered megapixel-frames times its model's allowance: a 16:9 540p 5 s
    clip is 0.52 MP x 120 frames = 62 MPx-frames, a 4k 9 s one 1792 (``worker/limits.py``)."""
    job_seconds_per_megapixel_frame: float = Field(default=1.0, gt=0)
    """Speed allowance of a model not named in ``model_seconds_per_megapixel_frame``: seconds a job may take per
    delivered megapixel-frame. Generous on purpose: the limit frees a worker from a hung job, it is no quota."""
    model_seconds_per_megapixel_frame: dict[str, PositiveFloat] = {}
    """Allowance per public model name, e.g. ``{"ray-flash-2": 0.5}`` (JSON in the environment variable)."""
    job_stop_grace_seconds: float = Field(default=60.0, gt=0)
    """A job asked to stop (cancelled, deleted, past its limit) that has not stopped this long after is stuck
    in native code: it is recorded as cancelled or failed and the worker process exits with status 70, for its
    supervisor (``dreamreel serve``, systemd, Kubernetes) to start a fresh one. Counted from when the job's
    model is loaded: a cold load runs to its end and the job stops at its first check."""
    cancel_poll_seconds: float = Field(default=1.0, gt=0)
    """How often a running job looks for a cancel or delete between lease renewals: a job stops within about
    this long of a cancel (each stage checks between steps, decoder blocks and frames)."""

    def catalog(self) -> Catalog:
        """The public names this process serves (``engine/catalog.py``); a bad config raises ``CatalogError``."""
        return open_catalog(self.models_config, self.model_dir, device=self.device, dtype=self.dtype,
                            steps=self.steps, known_families=FAMILIES)

    @field_validator("metrics_allow_from")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        """Each entry a CIDR (``10.0.0.0/8``) or one address; kept as text (settings travel to workers as JSON)."""
        for network in networks:
            ipaddress.ip_network(network, strict=False)  # a ValueError names the entry
        return networks

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'dreamreel.db'}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "files"

    @property
    def resolved_torch_threads(self) -> int:
        """``torch_threads``, or 0 resolved: the cores this process may run on over the workers ``serve`` starts."""
        if self.torch_threads:
            return self.torch_threads
        return max(1, len(os.sched_getaffinity(0)) // max(1, self.workers))

    @property
    def resolved_public_url(self) -> str:
        scheme = "https" if self.tls_enabled else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def tls_enabled(self) -> bool:
        return self.tls_self_signed or self.tls_cert is not None
