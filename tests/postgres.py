"""The real PostgreSQL the tests use: ``DREAMREEL_TEST_POSTGRES_URL`` (set by ``make test`` from
``scripts/ensure_postgres.sh``), else this machine kind's server at 127.0.0.1:5432, database ``test``.

Each test gets a schema of its own (``search_path`` in the URL), dropped afterwards, so tests never see
each other's rows and nothing is left behind. A test needing PostgreSQL fails, never skips, when it is down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("DREAMREEL_TEST_POSTGRES_URL") or DEFAULT_URL


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections work in a new, empty schema; the schema is dropped on exit."""
    base = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class PrivateCluster:
    """A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl`` as the ``postgres`` user when run as
    root, a free port, data in a fresh directory under /tmp that user can reach), for tests that stop and
    start the database; never the machine's shared :5432."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dreamreel-pg-"))
        self.directory = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        self._bin = binaries[-1] if binaries else None

    def _run(self, tool: str, *args: str) -> None:
        executable = str(self._bin / tool) if self._bin and (self._bin / tool).exists() else tool
        subprocess.run([*self._as_postgres, executable, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> PrivateCluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.directory), "-U", "postgres", "-A", "trust")
        return self

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory), "-l", str(self.directory / "server.log"), "-w",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory), "-w", "-m", "fast", "stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
