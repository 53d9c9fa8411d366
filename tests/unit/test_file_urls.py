"""``FileUrls``: the expiry bucket and the signature check, on a fixed clock."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from dreamreel.api.urls import FileUrls

KEY = "generations/abc/video.mp4"
HOUR = 3600
DAY = 24 * HOUR


def _urls(now: float, ttl: int = DAY, secret: bytes = b"s" * 32) -> FileUrls:
    return FileUrls("https://video.example.com", secret, ttl, clock=lambda: now)


def _query(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["exp"][0], query["sig"][0]


def test_one_url_per_hour_bucket_living_between_ttl_and_ttl_plus_an_hour() -> None:
    start = 1_000 * HOUR  # an hour boundary
    first = _urls(start + 1).url(KEY)
    assert first == _urls(start + HOUR - 1).url(KEY)  # polls within the bucket: the same string
    assert first != _urls(start + HOUR + 1).url(KEY)  # the next bucket: a new URL
    exp = int(_query(first)[0])
    assert exp == start + HOUR + DAY and DAY <= exp - (start + 1) < DAY + HOUR
    assert first.startswith("https://video.example.com/files/generations/abc/video.mp4?exp=")


def test_a_ttl_under_an_hour_buckets_by_the_ttl() -> None:
    exp = int(_query(_urls(10_000 * 60 + 1, ttl=60).url(KEY))[0])
    assert exp == 10_002 * 60


def test_only_an_unexpired_url_signed_with_the_same_secret_for_the_same_path_passes() -> None:
    now = 5_000 * HOUR
    urls = _urls(now)
    exp, sig = _query(urls.url(KEY))
    assert urls.seconds_left(KEY, exp, sig) == int(exp) - now
    assert _urls(now, secret=b"t" * 32).seconds_left(KEY, exp, sig) is None  # another deployment's secret
    assert urls.seconds_left("generations/abc/poster.jpg", exp, sig) is None
    assert urls.seconds_left(KEY, str(int(exp) + HOUR), sig) is None
    assert urls.seconds_left(KEY, exp, sig[:-2]) is None
    assert urls.seconds_left(KEY, None, sig) is None and urls.seconds_left(KEY, exp, None) is None
    assert _urls(int(exp)).seconds_left(KEY, exp, sig) is None  # expired at exp
    for odd_exp in ("-1", "1e9", "٣", " 1", "9" * 5000):
        assert urls.seconds_left(KEY, odd_exp, sig) is None
    assert urls.seconds_left(KEY, exp, "é\udcff") is None
    assert urls.url(None) is None and urls.url("") is None
