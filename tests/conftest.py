"""Shared fixtures: the tiny offline models, and real server processes on loopback."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

DREAMREEL = str(Path(sys.executable).parent / "dreamreel")

SERVED_LOGS: list[Path] = []
"""Every log file a served process of this test run wrote (servers, their workers, separate workers)."""
SECRETS: set[str] = set()
"""Every API key and admin token a served process of this run was given or issued: none may reach a log."""
UNREDACTED = {
    "a URL signature": re.compile(r"[?&]sig=(?!\[redacted\])[^&\s\"']+"),
    "a data: payload": re.compile(r"base64,[A-Za-z0-9+/=]{40,}"),
}


def remember_secret(token: str) -> str:
    """``token`` (an issued key) joins the strings the end-of-run log scan looks for."""
    SECRETS.add(token)
    return token


@pytest.fixture(scope="session", autouse=True)
def served_logs_hold_no_secrets() -> Iterator[None]:
    """After the whole run: no key or admin token any served process was given, no URL signature and no
    ``data:`` payload appears in any log a server or worker of the run wrote (core/logs.py scrubs them; this
    checks that it does everywhere, whatever the format and whichever process wrote the line)."""
    yield
    found = secrets_in(SERVED_LOGS, SECRETS)
    assert not found, found


def secrets_in(paths: list[Path], secrets: set[str]) -> list[str]:
    """What of ``secrets`` and :data:`UNREDACTED` each existing log of ``paths`` holds, one line per finding."""
    found = []
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        found += [f"{path.name}: a key or token" for secret in secrets if secret in text]
        found += [f"{path.name}: {what} ({match.group(0)[:40]}...)" for what, pattern in UNREDACTED.items()
                  for match in [pattern.search(text)] if match]
    return found


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random LTX-Video model, built offline once per test session."""
    from dreamreel.engine.tiny_model import build_tiny_ltx

    return build_tiny_ltx(tmp_path_factory.mktemp("models") / "tiny-ltx", seed=0)


@pytest.fixture(scope="session")
def tiny_wan_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Wan VACE model (family ``wan-vace``), built offline once per test session."""
    from dreamreel.engine.tiny_wan import build_tiny_wan

    return build_tiny_wan(tmp_path_factory.mktemp("models") / "tiny-wan-vace", "wan-vace", seed=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``dreamreel serve`` (or ``worker``) as a real subprocess, as a user would run it."""

    def __init__(
        self, data_dir: Path, model_dir: Path, *, workers: int = 1, extra_env: dict | None = None, tls: bool = False,
        log_level: str = "warning",
    ):
        self.data_dir = data_dir
        self.model_dir = model_dir
        self.workers = workers
        self.tls = tls
        self.log_level = log_level
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.env = {
            **os.environ,
            "DREAMREEL_LEASE_SECONDS": "3",
            "DREAMREEL_HEARTBEAT_SECONDS": "0.5",
            "DREAMREEL_POLL_SECONDS": "0.2",
            "DREAMREEL_ALLOW_PRIVATE_URLS": "true",
            "DREAMREEL_METRICS_ALLOW_FROM": '["127.0.0.0/8"]',  # tests read /metrics over loopback
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir / f"serve-{self.port}.log"
        SERVED_LOGS.append(self.log_path)
        SECRETS.update(json.loads(self.env.get("DREAMREEL_API_KEYS") or "[]"))
        if self.env.get("DREAMREEL_ADMIN_TOKEN"):
            SECRETS.add(self.env["DREAMREEL_ADMIN_TOKEN"])

    def start(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            DREAMREEL, "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--model-dir", str(self.model_dir),
            "--workers", str(self.workers), "--log-level", self.log_level,
        ] + (["--tls-self-signed"] if self.tls else [])
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should verify against: the server's local CA when it serves https."""
        if not self.tls:
            return True
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file.exists() else False

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_cli(argv: list[str]) -> int:
    """``dreamreel <argv>`` in this process (the command's own code, without a subprocess's 4 s of imports),
    with the root logger's handlers and level put back afterwards: the command sets up logging for a process of
    its own."""
    from dreamreel.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return main(argv)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def models_config_env(root: Path, toml: str) -> dict[str, str]:
    """``toml`` written as ``root/models.toml``, and the environment that points a server at it."""
    config = root / "models.toml"
    config.write_text(toml)
    return {"DREAMREEL_MODELS_CONFIG": str(config)}


def start_worker(data_dir: Path, model_dir: Path, env: dict) -> subprocess.Popen:
    path = data_dir / f"worker-{time.time_ns()}.log"
    SERVED_LOGS.append(path)
    with open(path, "ab") as log:
        return subprocess.Popen(
            [DREAMREEL, "worker", "--data-dir", str(data_dir), "--model-dir", str(model_dir)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )


def stop_all(workers: list[subprocess.Popen], servers: list[ServerProcess]) -> None:
    """Stop worker processes (SIGTERM, then SIGKILL after 30 s) and servers, whatever state they are in."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    """One server for a whole module of tests that do not depend on each other's generations."""
    proc = ServerProcess(tmp_path_factory.mktemp("shared") / "data", tiny_model_dir).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def keyed_edits_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    """One server with keys ``key-a`` and ``key-b`` for the Luma and OpenAI video-edit tests: a worker's warm-up
    is most of such a module's time, so they share one."""
    server = ServerProcess(tmp_path_factory.mktemp("edits") / "data", tiny_model_dir,
                           extra_env={"DREAMREEL_API_KEYS": '["key-a", "key-b"]'}).start()
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", tiny_model_dir).start()
    yield proc
    proc.stop()


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.2):
    """Poll until ``predicate()`` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class RecordingSink:
    """A preview sink (``engine.backends.base.PreviewSink``) that is always due and keeps what it is asked and
    handed: the ``(step, total)`` of every ``due`` call and every delivered frame array."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []
        self.frames: list[np.ndarray] = []

    def due(self, step: int, total: int) -> bool:
        self.asked.append((step, total))
        return True

    def deliver(self, frames: np.ndarray) -> None:
        self.frames.append(frames)
