"""Refuse outbound requests to loopback, private, link-local and metadata addresses.

A client-supplied URL (a callback, an image) must not let them probe the server's own network.
The check resolves the host and inspects every address it maps to, by ``core.addresses``' policy.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from dreamreel.core.addresses import address_refusal

#: ``(host, port) -> addresses``; injectable so tests can pin a fake hostname to loopback without DNS.
Resolver = Callable[[str, int], list[str]]

class BlockedURL(Exception):
    """The URL is not http(s) or points at an address this server must not reach."""


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the OS resolver (``getaddrinfo``); raises ``socket.gaierror`` on failure."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve_checked(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> list[str]:
    """Return the addresses ``url``'s host resolves to, raising ``BlockedURL`` if any is forbidden.

    Callers that then connect must connect to one of *these* addresses (see :mod:`dreamreel.net.fetch`),
    not resolve again: a second lookup is exactly what a DNS-rebinding attacker answers differently.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedURL(f"only http(s) URLs with a host are allowed, got {url[:100]!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = sorted(set((resolver or system_resolver)(parts.hostname, port)))
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedURL(f"cannot resolve {parts.hostname}: {exc}") from None
    if not addresses:
        raise BlockedURL(f"{parts.hostname} resolves to no address")
    for text in addresses:
        refusal = address_refusal(text, allow_private=allow_private)
        if refusal is not None:
            raise BlockedURL(f"{parts.hostname} resolves to {refusal} ({text})")
    return addresses
