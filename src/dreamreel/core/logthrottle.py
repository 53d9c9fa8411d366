"""A log filter that rate-limits repeated warnings and errors, so a flood cannot flood the log (the API's
and the workers' alike).

A hostile client can make the server fail the same way thousands of times a second (connections refused
at the cap, malformed requests, a full file table); writing every one costs disk and CPU and buries the
lines that matter. Records are grouped by logger, level and message *template* (``record.msg`` before its
``%`` arguments: the same failure for different clients or paths is one group). Each group may write
``limit`` records per ``window_s``; the first one over the limit is written with a note that copies are
being suppressed, the rest are counted, and the group's next record after the window carries
``[N identical messages suppressed]``. Records below WARNING (the access log, progress) always pass: they
are the operator's choice of verbosity, not an error path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_GROUPS = 1000
"""Groups remembered at once: templates are written in code, but one built with an f-string may carry
request data, so a full table drops its expired windows (and then its oldest groups)."""
_MARK = "_dreamreel_repeat_verdict"
"""Set on a record once judged, so a record seen by two handlers is counted once."""


@dataclass
class _Group:
    window_start: float
    written: int = 0
    noted: bool = False
    suppressed: int = 0


class RepeatThrottle(logging.Filter):
    """At most ``limit`` records per (logger, level, template) every ``window_s`` seconds, WARNING and up."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._groups: dict[tuple[str, int, str], _Group] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, _MARK, None)
        if verdict is not None:
            return verdict
        verdict = record.levelno < logging.WARNING or self._judge(record)
        setattr(record, _MARK, verdict)
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:500])
        now = self.clock()
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                self._make_room(now)
                group = self._groups[key] = _Group(window_start=now)
            elif now - group.window_start >= self.window_s:
                if group.suppressed:
                    _annotate(record, f"[{group.suppressed} identical messages suppressed]")
                group.window_start, group.written, group.noted, group.suppressed = now, 0, False, 0
            if group.written < self.limit:
                group.written += 1
                return True
            if not group.noted:
                group.noted = True
                _annotate(record, f"[repeated; identical messages suppressed for up to {self.window_s:g} s]")
                return True
            group.suppressed += 1
            return False

    def _make_room(self, now: float) -> None:
        if len(self._groups) < MAX_GROUPS:
            return
        for key in [k for k, g in self._groups.items() if now - g.window_start >= self.window_s]:
            del self._groups[key]
        while len(self._groups) >= MAX_GROUPS:
            del self._groups[next(iter(self._groups))]


def _annotate(record: logging.LogRecord, note: str) -> None:
    """Append ``note`` to the record's message, keeping its ``%`` arguments intact."""
    record.msg = f"{record.msg} {note.replace('%', '%%') if record.args else note}"


def install(throttle: RepeatThrottle) -> None:
    """Put the filter on every handler configured now (the root's and uvicorn's): a handler's filter also
    sees the records that propagate to it, which a logger's filter would not."""
    known = list(logging.root.manager.loggerDict.values())
    for logger in [logging.getLogger(), *(item for item in known if isinstance(item, logging.Logger))]:
        for handler in logger.handlers:
            if throttle not in handler.filters:
                handler.addFilter(throttle)
