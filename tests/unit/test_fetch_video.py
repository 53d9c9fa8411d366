"""Fetching an edit's source video (``net.fetch.fetch_video``) from a real HTTP server on loopback: the body lands
in the destination whole or not at all, under the same address policy, redirect checks and caps as images, and
only when its first bytes are a video container's."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.unit.test_video_source import clip_bytes

from dreamreel.core.edits import MAX_SOURCE_BYTES
from dreamreel.media.video_source import read_facts
from dreamreel.net.fetch import FetchError, fetch_video

MP4 = clip_bytes(frames=6)
WEBM = clip_bytes("webm", "libvpx", frames=6)
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


class VideoServer:
    """Answers ``routes[path] = (status, headers, body)``; records the paths asked. HTTP/1.0, so a body sent
    without ``Content-Length`` ends when the connection closes."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.seen.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {"Content-Length": "0"}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading (a refused body)
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, path: str, body: bytes, *, length: bool = True, status: int = 200, **headers: str) -> str:
        if length:
            headers["Content-Length"] = str(len(body))
        self.routes[path] = (status, headers, body)
        return self.url(path)


@pytest.fixture
def server() -> Iterator[VideoServer]:
    host = VideoServer()
    thread = threading.Thread(target=host.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield host
    host.httpd.shutdown()
    host.httpd.server_close()


def _left_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize(("body", "name"), [(MP4, "mp4"), (WEBM, "webm")])
def test_a_video_is_streamed_into_place(server: VideoServer, tmp_path: Path, body: bytes, name: str) -> None:
    dest = tmp_path / "source"
    url = server.serve(f"/clip.{name}", body, **{"Content-Type": "application/octet-stream"})  # the type is no help
    assert fetch_video(url, dest, allow_private=True, timeout_s=10) == dest
    assert dest.read_bytes() == body and _left_in(tmp_path) == ["source"]
    assert read_facts(dest).frames == 6


def test_a_body_without_length_streams_too(server: VideoServer, tmp_path: Path) -> None:
    url = server.serve("/clip.mp4", MP4, length=False)
    assert fetch_video(url, tmp_path / "source", allow_private=True, timeout_s=10).read_bytes() == MP4


def test_loopback_is_refused_without_allow_private(server: VideoServer, tmp_path: Path) -> None:
    url = server.serve("/clip.mp4", MP4)
    with pytest.raises(FetchError) as info:
        fetch_video(url, tmp_path / "source", allow_private=False, timeout_s=10)
    assert info.value.reason == "blocked" and server.seen == [] and _left_in(tmp_path) == []


def test_a_redirect_to_a_metadata_address_is_refused(server: VideoServer, tmp_path: Path) -> None:
    """Each hop is resolved and checked again: the first host is fine, where it redirects is not (a cloud
    metadata address is refused even where private addresses are allowed)."""
    addresses = {"videos.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]}
    server.routes["/moved"] = (302, {"Location": "http://metadata.test/latest/meta-data/", "Content-Length": "0"}, b"")
    with pytest.raises(FetchError, match="metadata.test resolves to a cloud metadata address") as info:
        fetch_video(server.url("/moved", host="videos.test"), tmp_path / "source", allow_private=True, timeout_s=10,
                    resolver=lambda host, port: addresses[host])
    assert info.value.reason == "blocked" and server.seen == ["/moved"] and _left_in(tmp_path) == []


def test_a_redirect_to_a_video_is_followed(server: VideoServer, tmp_path: Path) -> None:
    server.serve("/clip.mp4", MP4)
    server.routes["/moved"] = (307, {"Location": "/clip.mp4", "Content-Length": "0"}, b"")
    assert fetch_video(server.url("/moved"), tmp_path / "source", allow_private=True, timeout_s=10).read_bytes() == MP4
    assert server.seen == ["/moved", "/clip.mp4"]


def test_a_declared_length_over_the_cap_is_refused_before_the_body(server: VideoServer, tmp_path: Path) -> None:
    server.routes["/huge.mp4"] = (200, {"Content-Length": str(2 * MAX_SOURCE_BYTES)}, MP4)
    with pytest.raises(FetchError, match=f"Content-Length {2 * MAX_SOURCE_BYTES} exceeds the {MAX_SOURCE_BYTES}"):
        fetch_video(server.url("/huge.mp4"), tmp_path / "source", allow_private=True, timeout_s=10)
    assert _left_in(tmp_path) == []


def test_a_body_streaming_past_the_cap_is_cut_off_and_removed(server: VideoServer, tmp_path: Path) -> None:
    url = server.serve("/endless.mp4", MP4 + b"\0" * 300_000, length=False)
    with pytest.raises(FetchError) as info:
        fetch_video(url, tmp_path / "source", allow_private=True, timeout_s=10, max_bytes=100_000)
    assert info.value.reason == "too_large" and _left_in(tmp_path) == []


@pytest.mark.parametrize("body", [PNG_HEAD, b"<html>not a video</html>", b"", MP4[:8]])
def test_a_body_that_is_not_a_video_is_refused(server: VideoServer, tmp_path: Path, body: bytes) -> None:
    """Judged by the first bytes (a ``video/mp4`` Content-Type changes nothing); nothing is kept."""
    url = server.serve("/fake.mp4", body, **{"Content-Type": "video/mp4"})
    with pytest.raises(FetchError, match="not an MP4, MOV or WebM video") as info:
        fetch_video(url, tmp_path / "source", allow_private=True, timeout_s=10)
    assert info.value.reason == "not_video" and _left_in(tmp_path) == []


@pytest.mark.parametrize("url", ["data:video/mp4;base64,AAAA", "file:///etc/passwd", "ftp://example.com/a.mp4"])
def test_only_http_urls_are_fetched(tmp_path: Path, url: str) -> None:
    with pytest.raises(FetchError) as info:
        fetch_video(url, tmp_path / "source", allow_private=True, timeout_s=10)
    assert info.value.reason == "bad_scheme"


def test_an_error_status_keeps_nothing(server: VideoServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as info:
        fetch_video(server.url("/absent.mp4"), tmp_path / "source", allow_private=True, timeout_s=10)
    assert info.value.reason == "http_status" and _left_in(tmp_path) == []
