"""The thread pool that status polls, lists and downloads read the store and the disk in; their JSON; downloads.

Why a pool of its own, and why this size:

- **Apart from the default pool.** FastAPI runs every sync route (creates, edits, uploads, cancels) in anyio's
  default pool of 40 threads. A create can wait up to the store's busy timeout for SQLite's write lock (held
  by a worker's commit, a migration, a ``db copy``), and forty such creates fill that pool; polls queued
  behind them would wait as long, though a read never needs the write lock (WAL). Reads here never queue
  behind writes.
- **Small.** A read is short: a kept SQLite connection answers a status row in about 0.1 ms, a page-cached
  file chunk in less, and PostgreSQL's pool has a few connections. The API is one process with one GIL: a
  handful of threads keeps the event loop fed, and more only add GIL hand-offs (and CPU taken from a worker
  on the same machine) without adding throughput. :data:`READ_THREADS` is enough to keep reading while a few
  reads wait on a slow disk.

Status polls on SQLite read on the event loop instead (:func:`store_read`): its reads never wait.

The answers of the hot GET routes are rendered with :func:`json_response`: the render functions build exactly
their route's response model (``dialects/*_schema.py``; the OpenAPI fuzz test checks responses against it),
so validating each answer again through pydantic only spent the event loop's time.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from anyio import CancelScope, CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse

T = TypeVar("T")

READ_THREADS = 8
"""Threads for reads (see the module docstring)."""
DOWNLOAD_CHUNK_BYTES = 256 * 1024

_limiter: RunVar[CapacityLimiter] = RunVar("dreamreel_read_limiter")


def read_limiter() -> CapacityLimiter:
    """This event loop's read pool limiter (made on first use, one per loop as anyio's own default is)."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(READ_THREADS)
        _limiter.set(limiter)
        return limiter


async def run_read(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in the read pool: for store reads and file reads, never for writes."""
    return await to_thread.run_sync(partial(func, *args, **kwargs), limiter=read_limiter())


async def store_read(request: Request, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A status poll's store reads (``func``: store reads and rendering, no file I/O): on the event loop when
    the store's reads never wait (``JobStore.local_reads``: SQLite), else in the read pool.

    Why on the loop: the hand-off to a pool thread and back (two wake-ups, the GIL passed twice) cost more CPU
    than the read it carries, and a poll is nearly all an API process serves."""
    if request.app.state.service.store.local_reads:
        return func(*args, **kwargs)
    return await run_read(func, *args, **kwargs)


def json_response(content: Any, status_code: int = 200) -> JSONResponse:
    """``content`` (already in its response model's shape) as compact JSON, without a second validation."""
    return JSONResponse(content=content, status_code=status_code)


def file_stat(path: Path) -> os.stat_result | None:
    """The stat of a regular file at ``path``, or None (missing, or not a file); call it in the read pool."""
    try:
        result = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return result if stat.S_ISREG(result.st_mode) else None


class PooledFileResponse(FileResponse):
    """Starlette's ``FileResponse`` (Range, ETag, HEAD, disconnects as before) reading its file in the read pool,
    in larger chunks.

    Starlette reads each chunk with anyio's default pool, the one sync routes wait in: forty creates waiting
    for SQLite's write lock would stall every download. Chunks of :data:`DOWNLOAD_CHUNK_BYTES` rather than
    64 KiB make a clip of a few MB a few dozen trips to the pool, not a hundred; the transport's flow control
    still paces them to the client. Pass ``stat_result`` (from :func:`file_stat` in the read pool) so that the
    stat is not made in the default pool either. Should a Starlette release stop calling ``_open_file``, this
    falls back to Starlette's own reads (the same bytes, in the default pool)."""

    chunk_size = DOWNLOAD_CHUNK_BYTES

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        file = await run_read(open, self.path, "rb")
        try:
            yield _PooledFile(file)
        finally:
            with CancelScope(shield=True):  # closing must finish even when the transfer is cancelled
                await run_read(file.close)


class _PooledFile:
    """The part of ``anyio.AsyncFile`` that ``FileResponse`` uses, over the read pool."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    async def read(self, size: int = -1) -> bytes:
        return await run_read(self._file.read, size)

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return await run_read(self._file.seek, offset, whence)
