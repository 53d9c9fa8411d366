"""Durable job state behind ``core.jobstore.JobStore``: generations, their events and the webhook outbox.

``sqlite.SQLiteStore`` is the embedded default, ``postgres.PostgresStore`` the one for many machines; both
run the verbs of ``sql.SQLJobStore``. Every state change commits before it is acknowledged,
so a killed process loses no accepted job.
"""

from dreamreel.core.jobstore import JobStore

__all__ = ["JobStore", "open_store"]


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str) -> JobStore:
    """Open the store a URL names (``sqlite:///path/to.db`` or ``postgresql://user@host/db``), its schema
    brought up to date. The drivers are imported only for the backend asked for."""
    if url.startswith("sqlite:///"):
        from dreamreel.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if _is_postgres(url):
        from dreamreel.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported database URL {url.split('@')[-1]!r} (expected sqlite:///path or postgresql://...)")


def upgrade_schema(url: str) -> str:
    """Bring the store a URL names up to date (what opening it does anyway); says what was done."""
    if _is_postgres(url):
        from dreamreel.store.postgres import migrate

        applied = migrate(url)
        return f"applied migrations {applied}" if applied else "schema up to date"
    open_store(url).close()  # SQLite adds what an older file lacks on open
    return "schema up to date"
