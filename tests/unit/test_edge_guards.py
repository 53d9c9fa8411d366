"""The HTTP edge's pieces on their own: the log's repeat throttle, the cross-site rules, the connection cap
under the open-file limit. (The guards in a running server: tests/acceptance/test_hostile_http.py.)"""

from __future__ import annotations

import logging
import resource
import subprocess
import sys

import pytest

from dreamreel.api.origin import allowed_origins, parse_origin, refusal
from dreamreel.api.server import FD_RESERVE, connection_cap
from dreamreel.core.logthrottle import RepeatThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.WARNING, name: str = "dreamreel.edge") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_are_written_up_to_the_limit_then_counted_and_reported() -> None:
    clock = Clock()
    throttle = RepeatThrottle(limit=3, window_s=10, clock=clock)
    written = [r for r in (record("cap reached (%d open)", n) for n in range(100)) if throttle.filter(r)]
    assert len(written) == 4  # three, then one saying that copies are being suppressed
    assert "suppressed for up to 10 s" in written[-1].getMessage() and "(3 open)" in written[-1].getMessage()
    clock.now = 10.0
    report = record("cap reached (%d open)", 7)
    assert throttle.filter(report)
    assert report.getMessage() == "cap reached (7 open) [96 identical messages suppressed]"
    assert throttle.filter(record("cap reached (%d open)", 8))  # a fresh window


def test_groups_are_per_template_and_level_and_info_always_passes() -> None:
    throttle = RepeatThrottle(limit=1, window_s=10, clock=Clock())
    assert throttle.filter(record("a %s", 1)) and throttle.filter(record("b %s", 1))
    assert throttle.filter(record("a %s", 1, level=logging.ERROR))
    assert all(throttle.filter(record('%s "%s"', "1.2.3.4", "GET /", level=logging.INFO)) for _ in range(50))
    seen_twice = record("a %s", 2)
    first = throttle.filter(seen_twice)  # the one that announces the suppression
    assert first and throttle.filter(seen_twice) is first  # a record judged once, whichever handler asks
    assert not throttle.filter(record("a %s", 3))


def test_a_message_with_a_percent_sign_and_no_arguments_stays_intact() -> None:
    throttle = RepeatThrottle(limit=1, window_s=10, clock=Clock())
    assert throttle.filter(record("100% full"))
    noted = record("100% full")
    assert throttle.filter(noted) and noted.getMessage().startswith("100% full [repeated;")


ALLOWED = allowed_origins("http://127.0.0.1:8000")


@pytest.mark.parametrize(("method", "origin", "site", "refused"), [
    ("POST", None, None, False),  # SDKs, curl
    ("POST", "http://127.0.0.1:8000", "same-origin", False),
    ("POST", "http://localhost:8000", None, False),  # a loopback public URL's other spellings
    ("POST", "http://[::1]:8000", None, False),
    ("POST", "HTTP://LOCALHOST:8000/", None, False),
    ("POST", "https://evil.example", None, True),
    ("POST", "http://evil.example:8000", "same-origin", True),  # DNS rebinding
    ("POST", "http://127.0.0.1:9000", None, True),
    ("POST", "https://127.0.0.1:8000", None, True),
    ("POST", "null", None, True),
    ("POST", "http://127.0.0.1:99999", None, True),
    ("POST", "http://[::1", None, True),
    ("POST", None, "cross-site", True),
    ("POST", "http://127.0.0.1:8000", "cross-site", True),
    ("POST", None, "same-site", True),
    ("POST", "http://127.0.0.1:8000", "same-site", False),
    ("POST", None, "none", False),  # typed into the address bar
    ("DELETE", "https://evil.example", None, True),
    ("PUT", None, "cross-site", True),
    ("PATCH", None, "cross-site", True),
    ("GET", "https://evil.example", "cross-site", False),  # reads change nothing (and CORS hides them)
    ("HEAD", None, "cross-site", False),
])
def test_cross_site_rules(method: str, origin: str | None, site: str | None, refused: bool) -> None:
    assert (refusal(method, origin, site, ALLOWED) is not None) is refused


def test_a_public_url_on_a_name_allows_only_that_origin() -> None:
    allowed = allowed_origins("https://video.example.com/")
    assert allowed == {("https", "video.example.com", 443)}
    assert parse_origin("https://video.example.com:443") in allowed
    assert parse_origin("http://video.example.com") not in allowed


def test_the_connection_cap_stays_under_the_open_file_limit() -> None:
    assert connection_cap(1000, 1 << 20) == 1000
    assert connection_cap(1000, 1024) == (1024 - FD_RESERVE) // 2
    assert connection_cap(1000, 20) == 1  # never zero: the server must still answer someone


def test_serve_raises_its_open_file_limit_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, 256)
    code = ("import resource\nfrom dreamreel.api.server import raise_open_file_limit\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({low}, {hard}))\n"
            "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    expected = hard if hard != resource.RLIM_INFINITY else max(low, 1 << 20)
    assert [int(value) for value in out] == [expected, expected]
