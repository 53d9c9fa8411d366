"""Fetching hostile image sources, against real HTTP(S) servers on loopback (no mocks).

Fake hostnames (``*.test``) are pinned to 127.0.0.1 through the injectable resolver: if the connection did not
go to the pinned address, it could not reach the server at all (``.test`` never resolves in DNS).
"""

from __future__ import annotations

import base64
import io
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import pytest
from PIL import Image

from dreamreel.api.tls import ensure_self_signed
from dreamreel.net.fetch import (
    FetchError,
    PinnedNetworkBackend,
    decode_data_uri,
    fetch_image_bytes,
    fetch_pinned,
    load_image_source,
)
from dreamreel.net.guard import BlockedURL, resolve_checked

buffer = io.BytesIO()
Image.new("RGB", (4, 4), (10, 200, 30)).save(buffer, "PNG")
PNG = buffer.getvalue()

Route = Callable[[BaseHTTPRequestHandler], None]


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(50):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def _routes(port: int) -> dict[str, Route]:
    return {
        "/img.png": lambda h: _send(h, 200, PNG, Content_Type="image/png", Content_Length=str(len(PNG))),
        "/to-img": lambda h: _send(h, 302, Location="/img.png"),
        "/to-loopback": lambda h: _send(h, 302, Location=f"http://127.0.0.1:{port}/img.png"),
        "/to-file": lambda h: _send(h, 302, Location="file:///etc/passwd"),
        "/to-ftp": lambda h: _send(h, 301, Location="ftp://example.com/img.png"),
        "/loop": lambda h: _send(h, 307, Location="/loop"),
        "/big-declared": lambda h: _send(h, 200, b"x" * 10, Content_Length="10000000"),
        "/no-length": lambda h: _send(h, 200, b"x" * 200_000),  # HTTP/1.0, body ends at close
        "/lying-length": lambda h: _send(h, 200, b"x" * 10_000, Content_Length="100"),
        "/gzip": lambda h: _send(h, 200, b"x" * 10, Content_Encoding="gzip", Content_Length="10"),
        "/missing": lambda h: _send(h, 404, b"nope", Content_Length="4"),
        "/slow": lambda h: (time.sleep(3), _send(h, 200, PNG)),  # type: ignore[func-returns-value]
        "/drip": _drip,
    }


@dataclass
class Server:
    port: int
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    routes: dict[str, Route] = {}
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append((self.path, self.headers.get("Host", "")))
            routes.get(self.path, lambda h: _send(h, 404, Content_Length="0"))(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from the base class
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    server = Server(httpd.server_address[1], seen)
    routes.update(_routes(server.port))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


def to_loopback(host: str, port: int) -> list[str]:
    """A resolver that maps every name to 127.0.0.1: the pin, not DNS, decides where we connect."""
    return ["127.0.0.1"]


# --- address policy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "2002:7f00:1::"],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    with pytest.raises(BlockedURL):
        resolve_checked("http://host.test/", allow_private=False, resolver=lambda h, p: [address])


def test_public_address_passes_and_any_bad_address_blocks() -> None:
    assert resolve_checked("http://a.test/", allow_private=False, resolver=lambda h, p: ["93.184.216.34"])
    with pytest.raises(BlockedURL):
        resolve_checked("http://a.test/", allow_private=False, resolver=lambda h, p: ["93.184.216.34", "10.0.0.1"])


# --- schemes and blocked addresses ----------------------------------------------------------------------------


def test_loopback_is_refused_without_allow_private(server: Server) -> None:
    with pytest.raises(FetchError, match="^blocked") as info:
        fetch_image_bytes(server.url("/img.png"), allow_private=False)
    assert info.value.reason == "blocked"
    assert server.seen == []


def test_loopback_is_allowed_with_allow_private(server: Server) -> None:
    assert fetch_image_bytes(server.url("/img.png"), allow_private=True) == PNG


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"])
def test_metadata_endpoints_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="^blocked"):
        fetch_image_bytes(url, allow_private=False)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "/local/path"])
def test_non_http_schemes_are_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(FetchError) as info:
        fetch_image_bytes(url, allow_private=True)
    assert info.value.reason == "bad_scheme"


# --- DNS pinning ----------------------------------------------------------------------------------------------


def test_real_dns_name_reaches_the_resolved_address_with_its_own_host_header(server: Server) -> None:
    assert fetch_image_bytes(server.url("/img.png", host="localhost"), allow_private=True) == PNG
    assert server.seen == [("/img.png", f"localhost:{server.port}")]


def test_fake_hostname_is_pinned_to_the_resolved_address(server: Server) -> None:
    calls: list[str] = []

    def rebinding_resolver(host: str, port: int) -> list[str]:
        calls.append(host)  # a rebinding attacker would answer differently on a second lookup: there is none
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]

    url = server.url("/img.png", host="images.test")
    assert fetch_image_bytes(url, allow_private=True, resolver=rebinding_resolver) == PNG
    assert calls == ["images.test"]
    assert server.seen == [("/img.png", f"images.test:{server.port}")]


def test_pinned_backend_maps_hostname_and_refuses_unpinned_hosts(server: Server) -> None:
    backend = PinnedNetworkBackend({"Images.TEST": ["127.0.0.1"]})
    stream = backend.connect_tcp("images.test", server.port, timeout=2.0)
    stream.close()
    with pytest.raises(httpcore.ConnectError, match="no vetted address"):
        backend.connect_tcp("localhost", server.port, timeout=2.0)


def test_https_is_verified_against_the_hostname_not_the_pinned_ip(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path / "tls", ["images.test"])  # also covers 127.0.0.1 and localhost
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(files.cert, files.key)
    trust = ssl.create_default_context(cafile=str(files.ca_cert))
    serving = _serve(server_context)
    tls_server = next(serving)
    try:
        url = tls_server.url("/img.png", host="images.test", scheme="https")
        assert fetch_image_bytes(url, allow_private=True, resolver=to_loopback, ssl_context=trust) == PNG
        assert tls_server.seen == [("/img.png", f"images.test:{tls_server.port}")]
        # Same IP, whose address *is* in the certificate, but the name is not: verification must fail.
        with pytest.raises(FetchError) as info:
            fetch_image_bytes(url.replace("images.test", "evil.test"), allow_private=True, resolver=to_loopback,
                              ssl_context=trust)
        assert info.value.reason == "network"
        # And the default trust store does not know our test CA.
        with pytest.raises(FetchError):
            fetch_image_bytes(url, allow_private=True, resolver=to_loopback)
    finally:
        next(serving, None)


# --- redirects ------------------------------------------------------------------------------------------------


def test_redirect_is_followed_with_each_hop_resolved(server: Server) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    url = server.url("/to-img", host="first.test")
    assert fetch_image_bytes(url, allow_private=True, resolver=resolver) == PNG
    assert calls == ["first.test", "first.test"]
    assert server.paths() == ["/to-img", "/img.png"]


def test_redirect_to_private_address_is_refused_at_the_second_hop(server: Server) -> None:
    """The first hop stands in for a public host; the redirect target gets the real, strict policy."""

    def vet(url: str) -> list[str]:
        if url.startswith("http://gateway.test:"):
            return ["127.0.0.1"]
        return resolve_checked(url, allow_private=False)

    with pytest.raises(FetchError, match="^blocked: 127.0.0.1 resolves to a non-public"):
        fetch_pinned(server.url("/to-loopback", host="gateway.test"), vet=vet)
    assert server.paths() == ["/to-loopback"]


@pytest.mark.parametrize("path", ["/to-file", "/to-ftp"])
def test_redirect_to_non_http_scheme_is_refused(server: Server, path: str) -> None:
    with pytest.raises(FetchError) as info:
        fetch_image_bytes(server.url(path), allow_private=True)
    assert info.value.reason == "bad_scheme"


def test_too_many_redirects(server: Server) -> None:
    with pytest.raises(FetchError) as info:
        fetch_image_bytes(server.url("/loop"), allow_private=True, max_redirects=3)
    assert info.value.reason == "too_many_redirects"
    assert server.paths() == ["/loop"] * 4


# --- size, time, status ---------------------------------------------------------------------------------------


def test_oversized_content_length_is_refused_up_front(server: Server) -> None:
    with pytest.raises(FetchError, match="Content-Length 10000000 exceeds"):
        fetch_image_bytes(server.url("/big-declared"), allow_private=True, max_bytes=1_000_000)


def test_size_cap_applies_while_streaming_without_content_length(server: Server) -> None:
    with pytest.raises(FetchError, match="body exceeds the 50000-byte limit"):
        fetch_image_bytes(server.url("/no-length"), allow_private=True, max_bytes=50_000)
    assert len(fetch_image_bytes(server.url("/no-length"), allow_private=True)) == 200_000


def test_bytes_beyond_the_declared_length_are_never_read(server: Server) -> None:
    assert fetch_image_bytes(server.url("/lying-length"), allow_private=True, max_bytes=1000) == b"x" * 100


def test_compressed_bodies_are_refused(server: Server) -> None:
    with pytest.raises(FetchError) as info:
        fetch_image_bytes(server.url("/gzip"), allow_private=True)
    assert info.value.reason == "bad_encoding"


def test_http_error_status_is_reported(server: Server) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_image_bytes(server.url("/missing"), allow_private=True)


def test_slow_server_times_out(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch_image_bytes(server.url("/slow"), allow_private=True, timeout_s=0.5)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 1.5


def test_dripping_server_hits_the_total_deadline(server: Server) -> None:
    """Each byte arrives well within the read timeout; only the overall deadline stops it."""
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch_image_bytes(server.url("/drip"), allow_private=True, timeout_s=0.6)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 1.5


# --- data: URIs and dispatch ----------------------------------------------------------------------------------


def _data_uri(payload: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def test_data_uri_png_round_trips() -> None:
    assert decode_data_uri(_data_uri(PNG)) == PNG
    assert decode_data_uri(_data_uri(PNG).replace("data:image/png", "DATA:Image/PNG")) == PNG


def test_data_uri_percent_encoded_without_base64() -> None:
    assert decode_data_uri("data:image/bmp,BM%00%01") == b"BM\x00\x01"


@pytest.mark.parametrize("mime", ["text/plain", "", "application/octet-stream", "image/svg+xml", "text/html"])
def test_data_uri_non_image_mime_is_refused(mime: str) -> None:
    with pytest.raises(FetchError) as info:
        decode_data_uri(_data_uri(PNG, mime))
    assert info.value.reason == "bad_scheme"


@pytest.mark.parametrize(
    "uri", ["data:image/png;base64,@@@@", "data:image/png;base64,abc", "data:image/png;base64", "data:image/png,"]
)
def test_malformed_data_uri_is_refused(uri: str) -> None:
    with pytest.raises(FetchError) as info:
        decode_data_uri(uri)
    assert info.value.reason == "malformed"


def test_oversized_data_uri_is_refused() -> None:
    with pytest.raises(FetchError, match="payload exceeds the 1000-byte limit"):
        decode_data_uri(_data_uri(b"x" * 5000), max_bytes=1000)  # refused before decoding
    with pytest.raises(FetchError, match="decoded data: URI exceeds the 1000-byte limit"):
        decode_data_uri(_data_uri(b"x" * 1001), max_bytes=1000)  # just over: only the decoded size tells


def test_load_image_source_dispatches(server: Server) -> None:
    assert load_image_source(_data_uri(PNG), allow_private=False) == PNG
    assert load_image_source(server.url("/img.png"), allow_private=True) == PNG
    with pytest.raises(FetchError, match="^blocked"):
        load_image_source(server.url("/img.png"), allow_private=False)
    with pytest.raises(FetchError) as info:
        load_image_source("ftp://example.com/a.png", allow_private=True)
    assert info.value.reason == "bad_scheme"
