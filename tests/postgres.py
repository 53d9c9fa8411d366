"""The real PostgreSQL the tests use: ``DREAMREEL_TEST_POSTGRES_URL`` (set by ``make test`` from
``scripts/ensure_postgres.sh``), else this machine kind's server at 127.0.0.1:5432, database ``test``.

Each test gets a schema of its own (``search_path`` in the URL), dropped afterwards, so tests never see
each other's rows and nothing is left behind. A test needing PostgreSQL fails, never skips, when it is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
