"""Waking idle workers on the same machine: SQLite's stand-in for PostgreSQL's ``LISTEN``/``NOTIFY``.

SQLite has no notifications, so without this an idle worker only finds a new job at its next poll
(``poll_seconds``, 0.5 s by default: a quarter of a small job). Here every waiting worker owns a named pipe
(FIFO) in a directory beside the database file, ``<database>.wake/``; whoever commits a queued job writes
one byte into each pipe there, and a worker blocked in :meth:`WakeUp.wait` on its pipe returns at once.

Why FIFOs: they live in the filesystem next to the database the processes already share (so they reach
exactly the processes of this machine that use this database), need no port or path-length budget (a Unix
socket path is capped at 108 bytes; a pytest or systemd data dir can be longer), and tell the writer when
nobody reads them any more: ``open(O_WRONLY | O_NONBLOCK)`` fails with ``ENXIO`` for a pipe whose worker is
gone, and the ringer removes it. Polling stays the fallback: a wait always ends after its timeout, so a
lost byte (a full pipe, a directory the writer cannot read) costs at most one poll interval.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import uuid
from pathlib import Path

log = logging.getLogger("dreamreel.store")


class WakeUp:
    """The wake-up pipes of one database: :meth:`ring` after a commit that queued work, :meth:`wait` when idle."""

    def __init__(self, database: Path) -> None:
        self.directory = Path(f"{database}.wake")
        self._pipe: Path | None = None
        self._read_fd: int | None = None
        self._keep_fd: int | None = None
        """This process's own write end, held open so the read end never sees end-of-file between rings."""

    def ring(self) -> None:
        """One byte into every waiting worker's pipe; pipes nobody reads any more are removed. Never raises:
        a missed ring only delays a worker until its next poll."""
        try:
            pipes = list(self.directory.iterdir())
        except OSError:  # no worker ever waited here (or the directory is unreadable): they poll
            return
        for pipe in pipes:
            try:
                fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # its worker is gone
                    with contextlib.suppress(OSError):
                        pipe.unlink()
                continue
            try:
                os.write(fd, b"\0")
            except BlockingIOError:  # already full of rings it has not read: it will wake anyway
                pass
            except OSError as exc:
                log.debug("wake-up pipe %s: %s", pipe, exc)
            finally:
                os.close(fd)

    def wait(self, timeout_s: float) -> None:
        """Return when rung, or after ``timeout_s``; every ring that arrived while busy counts once."""
        read_fd = self._open()
        if read_fd is None:
            select.select([], [], [], timeout_s)
            return
        ready, _, _ = select.select([read_fd], [], [], timeout_s)
        if ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(read_fd, 4096):  # drain: the next wait blocks until the next ring
                    pass

    def _open(self) -> int | None:
        if self._read_fd is not None and self._pipe is not None and self._pipe.exists():
            return self._read_fd
        self.close()  # a pipe removed under us (a ringer took it for stale): make a new one
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            pipe = self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.mkfifo(pipe, 0o600)
            self._read_fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
            self._keep_fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            self._pipe = pipe
        except (OSError, AttributeError) as exc:  # a read-only filesystem, or no os.mkfifo: polling alone
            log.warning("no wake-up pipe in %s (%s); polling", self.directory, exc)
            self.close()
            return None
        return self._read_fd

    def close(self) -> None:
        """Close and remove this process's pipe (rings then skip it)."""
        for fd in (self._read_fd, self._keep_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.unlink()
        self._pipe = self._read_fd = self._keep_fd = None
