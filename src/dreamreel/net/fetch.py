"""Download a client-supplied image (http(s) URL or ``data:`` URI) or source video (http(s) URL) without letting
the client steer us.

Every input here is hostile: the URL may point at our own network (SSRF), re-resolve to loopback between our
check and our connect (DNS rebinding), redirect somewhere worse, never finish, or be endless. The defences:

* **Resolve once, connect to what was checked.** Each hop's host is resolved exactly once by
  :func:`~dreamreel.net.guard.resolve_checked`, and the TCP connection is *pinned* to those vetted addresses by
  :class:`PinnedTransport`: an ``httpx.HTTPTransport`` whose httpcore connection pool uses
  :class:`PinnedNetworkBackend`, a network backend that swaps the hostname for the pinned IP at
  ``connect_tcp`` time and refuses any host it has no pin for. Everything above the socket still sees the real
  hostname, so the ``Host`` header, TLS SNI and certificate verification all use it (a certificate for the IP
  alone does not pass). We chose the backend over "request ``https://<ip>`` plus ``sni_hostname``" because
  the URL, Host header, redirects and error messages then stay honest and nothing can forget to set SNI.
  ``trust_env=False`` keeps ``HTTP(S)_PROXY`` from routing around the pin.
* **Redirects by hand**: each ``Location`` is re-checked (scheme, then a fresh resolve-and-check) as a new hop.
* **Bounded**: a total deadline across all hops (each hop's connect/read/write timeouts are capped by what is
  left of it), ``Content-Length`` refused up front when too large, and the body counted while streaming
  (an image into memory, a video onto disk).
  We ask for ``identity`` encoding and refuse compressed bodies, so the cap counts the bytes that arrive and
  a gzip bomb cannot inflate past it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote_to_bytes

import httpcore
import httpx

from dreamreel.core.edits import MAX_SOURCE_BYTES
from dreamreel.media.video_source import SNIFF_BYTES, sniff_container
from dreamreel.net.guard import BlockedURL, Resolver, resolve_checked

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 20 * MiB

#: MIME types a keyframe ``data:`` URI may declare: the formats :func:`dreamreel.media.images.decode_image` reads.
IMAGE_MIME_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp", "image/gif", "image/bmp", "image/x-ms-bmp"}
)

VIDEO_TIMEOUT_S = 120.0
"""The whole download of a source video (every hop): 100 MB at under 1 MB/s is a host not worth waiting for."""
VIDEO_ACCEPT = "video/mp4, video/quicktime, video/webm;q=0.9, video/*;q=0.5"

T = TypeVar("T")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """An image or video source was refused or could not be fetched; ``reason`` is a stable machine-readable tag.

    Reasons: ``bad_scheme``, ``bad_url``, ``blocked``, ``too_large``, ``timeout``, ``http_status``,
    ``too_many_redirects``, ``bad_encoding``, ``malformed``, ``network``, ``not_video`` (a video fetch whose
    body is not MP4, MOV or WebM).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class PinnedNetworkBackend(httpcore.NetworkBackend):
    """Connect to pre-vetted addresses instead of resolving the hostname again.

    ``pins`` maps a lower-case ASCII hostname (IDNA form, no IPv6 brackets) to its checked addresses, tried
    in order. A host without a pin is refused rather than resolved: failing closed is the point.
    """

    def __init__(self, pins: Mapping[str, Sequence[str]], inner: httpcore.NetworkBackend | None = None) -> None:
        self._pins = {host.lower().strip("[]"): list(addresses) for host, addresses in pins.items()}
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._pins.get(host.lower().strip("[]"))
        if not addresses:
            raise httpcore.ConnectError(f"refusing to connect to {host!r}: no vetted address pinned for it")
        last_error: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for client-supplied URLs")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An ``httpx`` transport whose connections go only to the pinned addresses (see the module docstring).

    httpx does not expose httpcore's ``network_backend``, so we replace the pool it built with an equivalent
    one that has it; ``handle_request`` (request/response mapping, error translation) is httpx's own.
    """

    def __init__(self, pins: Mapping[str, Sequence[str]], *, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or httpx.create_ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=1,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            network_backend=PinnedNetworkBackend(pins),
        )


def _parse_http_url(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError("bad_url", f"cannot parse URL {str(url)[:100]!r}: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError("bad_scheme", f"only http and https URLs are fetched, got {parsed.scheme or 'none'!r}")
    if not parsed.raw_host:
        raise FetchError("bad_url", f"URL has no host: {str(url)[:100]!r}")
    return parsed


def _check_length(response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise FetchError("malformed", f"invalid Content-Length {declared[:40]!r}") from None
    if length > max_bytes:
        raise FetchError("too_large", f"Content-Length {length} exceeds the {max_bytes}-byte limit")


def _iter_capped(response: httpx.Response, max_bytes: int, deadline: float) -> Iterator[bytes]:
    """The body's chunks as they arrive, refused (``too_large``) once past ``max_bytes`` or ``deadline``."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError("bad_encoding", f"compressed response ({encoding!r}) refused; media is fetched as sent")
    _check_length(response, max_bytes)
    received = 0
    for chunk in response.iter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise FetchError("too_large", f"body exceeds the {max_bytes}-byte limit")
        if time.monotonic() > deadline:
            raise FetchError("timeout", "download did not finish within the deadline")
        yield chunk


BodyReader = Callable[[httpx.Response, float], T]
"""Consumes a 200 response's body before ``deadline`` (a ``time.monotonic()`` value): what a fetch returns."""


@dataclass(frozen=True)
class _Redirect:
    location: httpx.URL
    """Not checked yet: the next hop vets it like the first URL."""


def _get_once(
    url: httpx.URL, addresses: list[str], *, accept: str, read: BodyReader[T], deadline: float,
    ssl_context: ssl.SSLContext | None,
) -> T | _Redirect:
    """One pinned GET: what ``read`` makes of the body, or where a redirect points."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("timeout", "deadline passed before the request was sent")
    transport = PinnedTransport({url.raw_host.decode("ascii"): addresses}, ssl_context=ssl_context)
    headers = {"Accept": accept, "Accept-Encoding": "identity", "User-Agent": "dreamreel-fetch/1"}
    try:
        with (
            httpx.Client(transport=transport, timeout=httpx.Timeout(remaining), trust_env=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError("http_status", f"HTTP {response.status_code} redirect without a Location")
                try:
                    return _Redirect(url.join(location))
                except (httpx.InvalidURL, ValueError) as exc:
                    raise FetchError("bad_url", f"unusable redirect Location {location[:100]!r}: {exc}") from None
            if response.status_code != 200:
                raise FetchError("http_status", f"{url.host} answered HTTP {response.status_code}")
            return read(response, deadline)
    except httpx.TimeoutException as exc:
        raise FetchError("timeout", f"{type(exc).__name__} talking to {url.host}") from None
    except httpx.TransportError as exc:
        raise FetchError("network", f"cannot fetch from {url.host}: {exc or type(exc).__name__}") from None


def _follow(
    url: str, *, vet: Callable[[str], list[str]], accept: str, read: BodyReader[T], timeout_s: float,
    max_redirects: int, ssl_context: ssl.SSLContext | None,
) -> T:
    """GET ``url`` following redirects by hand, every hop vetted and pinned, all within one deadline."""
    deadline = time.monotonic() + timeout_s
    target: str | httpx.URL = url
    for _hop in range(max_redirects + 1):
        parsed = _parse_http_url(target)
        try:
            addresses = vet(str(parsed))
        except BlockedURL as exc:
            raise FetchError("blocked", str(exc)) from None
        result = _get_once(parsed, addresses, accept=accept, read=read, deadline=deadline, ssl_context=ssl_context)
        if not isinstance(result, _Redirect):
            return result
        target = result.location
    raise FetchError("too_many_redirects", f"more than {max_redirects} redirects starting from {url[:100]!r}")


def _vetter(allow_private: bool, resolver: Resolver | None) -> Callable[[str], list[str]]:
    def vet(hop_url: str) -> list[str]:
        return resolve_checked(hop_url, allow_private=allow_private, resolver=resolver)

    return vet


def fetch_pinned(
    url: str,
    *,
    vet: Callable[[str], list[str]],
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = 15.0,
    max_redirects: int = 3,
    ssl_context: ssl.SSLContext | None = None,
) -> bytes:
    """Fetch ``url`` following redirects by hand; ``vet(url)`` resolves and checks every hop's host.

    ``vet`` must return only addresses it has judged safe (or raise ``BlockedURL``): connections are pinned
    to exactly what it returns. :func:`fetch_image_bytes` is the policy-carrying entry point most code wants.
    """

    def read(response: httpx.Response, deadline: float) -> bytes:
        return b"".join(_iter_capped(response, max_bytes, deadline))

    return _follow(url, vet=vet, accept="image/*", read=read, timeout_s=timeout_s, max_redirects=max_redirects,
                   ssl_context=ssl_context)


def fetch_image_bytes(
    url: str,
    *,
    allow_private: bool,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = 15.0,
    max_redirects: int = 3,
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
) -> bytes:
    """Download an image from a client-supplied http(s) URL, with SSRF, rebinding, size and time limits.

    ``allow_private`` lets the server reach private/loopback hosts (a LAN deployment); the scheme is still
    http(s) only. ``ssl_context`` adds a trust store (tests, private CAs) and never disables verification
    unless the caller builds a context that does. ``resolver`` replaces DNS (tests).
    """
    return fetch_pinned(url, vet=_vetter(allow_private, resolver), max_bytes=max_bytes, timeout_s=timeout_s,
                        max_redirects=max_redirects, ssl_context=ssl_context)


def fetch_video(
    url: str,
    dest: Path,
    *,
    allow_private: bool,
    timeout_s: float = VIDEO_TIMEOUT_S,
    max_bytes: int = MAX_SOURCE_BYTES,
    max_redirects: int = 3,
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
) -> Path:
    """Download an edit's source video from a client-supplied http(s) URL into ``dest``; returns ``dest``.

    The same defences as :func:`fetch_image_bytes` (pinned DNS, redirects re-checked, one deadline, no
    compressed bodies), plus: the body streams to disk (memory stays small at ``max_bytes``), its first bytes
    must sniff as MP4, MOV or WebM (``not_video``; headers are not believed), and ``dest`` appears only
    complete (written to a temporary sibling, then renamed) and never after a failure. No ``data:`` URIs: a
    video that size has no business inside a JSON body.
    """

    def read(response: httpx.Response, deadline: float) -> Path:
        part = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        try:
            with part.open("wb") as file:
                _write_video(_iter_capped(response, max_bytes, deadline), file)
            part.replace(dest)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return dest

    return _follow(url, vet=_vetter(allow_private, resolver), accept=VIDEO_ACCEPT, read=read, timeout_s=timeout_s,
                   max_redirects=max_redirects, ssl_context=ssl_context)


def _write_video(chunks: Iterator[bytes], file: BinaryIO) -> None:
    """Write ``chunks`` to ``file``, refusing the body (``not_video``) unless its first bytes are a video
    container's: nothing past the sniffed head is written before it is judged."""
    head = bytearray()
    for chunk in chunks:
        if len(head) >= SNIFF_BYTES:
            file.write(chunk)
            continue
        head += chunk
        if len(head) >= SNIFF_BYTES:
            _require_video(bytes(head))
            file.write(head)
    if len(head) < SNIFF_BYTES:
        _require_video(bytes(head))  # shorter than any container's header


def _require_video(head: bytes) -> None:
    if sniff_container(head) is None:
        raise FetchError("not_video", "the body is not an MP4, MOV or WebM video (judged from its first bytes)")


def decode_data_uri(uri: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Decode ``data:<image mime>[;params][;base64],<data>``, refusing non-image types and oversize payloads.

    The encoded length is checked before decoding (so a huge string costs no decode work) and the decoded
    length after (percent-encoding and base64 expand differently).
    """
    if uri[:5].lower() != "data:":
        raise FetchError("bad_scheme", "not a data: URI")
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise FetchError("malformed", "data: URI has no ',' separating header and data")
    params = [part.strip().lower() for part in header.split(";")]
    mime, is_base64 = params[0], params[-1] == "base64"
    if mime not in IMAGE_MIME_TYPES:
        raise FetchError("bad_scheme", f"data: URI must carry an image (png/jpeg/webp/gif/bmp), got {mime or 'none'!r}")
    encoded_limit = (max_bytes + 2) // 3 * 4 + 64 if is_base64 else max_bytes * 3 + 64
    if len(payload) > encoded_limit:
        raise FetchError("too_large", f"data: URI payload exceeds the {max_bytes}-byte limit")
    try:
        raw = unquote_to_bytes(payload) if "%" in payload or not is_base64 else payload.encode("ascii")
        if is_base64:
            raw = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FetchError("malformed", f"invalid base64 in data: URI: {exc}") from None
    if not raw:
        raise FetchError("malformed", "data: URI is empty")
    if len(raw) > max_bytes:
        raise FetchError("too_large", f"decoded data: URI exceeds the {max_bytes}-byte limit")
    return raw


def load_image_source(
    source: str, *, allow_private: bool, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = 15.0
) -> bytes:
    """Bytes of an image given as a ``data:`` URI or an http(s) URL (uploaded files are resolved elsewhere)."""
    if source[:5].lower() == "data:":
        return decode_data_uri(source, max_bytes=max_bytes)
    return fetch_image_bytes(source, allow_private=allow_private, max_bytes=max_bytes, timeout_s=timeout_s)
