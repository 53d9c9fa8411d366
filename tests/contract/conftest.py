"""Store backends the contract suite runs against: one line each in :data:`BACKENDS`.

A factory is a context manager taking the test's ``tmp_path`` and giving an *opener*: a no-argument
callable that opens a new handle on one and the same database each time it is called, and cleaning up
after the test (PostgreSQL: the test's own schema is dropped). The first handle is the ``store`` fixture;
a test that needs another process's view (a second API process, a racing worker) calls ``open_store()``
for another handle on the same data. Openers are called in forked child processes too, so they must not
depend on state that does not survive a fork (open connections lazily, inside the handle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from tests.postgres import fresh_schema

from dreamreel.core.jobstore import JobStore
from dreamreel.store.postgres import PostgresStore
from dreamreel.store.sqlite import SQLiteStore

Opener = Callable[[], JobStore]


@contextmanager
def sqlite_backend(tmp_path: Path) -> Iterator[Opener]:
    yield lambda: SQLiteStore(tmp_path / "dreamreel.db")


@contextmanager
def postgres_backend(tmp_path: Path) -> Iterator[Opener]:
    """The real PostgreSQL the test command provides, in a schema of this test's own (dropped after)."""
    with fresh_schema() as url:
        yield lambda: PostgresStore(url, pool_size=4)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opener]]] = {
    "sqlite": sqlite_backend,
    "postgres": postgres_backend,
}


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another handle on the test's database each call; every handle is closed after the test."""
    with BACKENDS[request.param](tmp_path) as opener:
        handles: list[JobStore] = []

        def open_handle() -> JobStore:
            handle = opener()
            handles.append(handle)
            return handle

        yield open_handle
        for handle in handles:
            handle.close()


@pytest.fixture
def store(open_store: Opener) -> JobStore:
    """The first handle on a fresh, empty database of the backend under test."""
    return open_store()
