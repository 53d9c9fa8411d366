"""Refuse outbound requests to loopback, private, link-local and metadata addresses.

A client-supplied URL (a callback, an image) must not let them probe the server's own network.
The check resolves the host and inspects every address it maps to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

#: ``(host, port) -> addresses``; injectable so tests can pin a fake hostname to loopback without DNS.
Resolver = Callable[[str, int], list[str]]

#: Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack IPv4, AWS IPv6). They are already
#: non-global, but naming them keeps the refusal explicit should the stdlib's tables ever change.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


class BlockedURL(Exception):
    """The URL is not http(s) or points at an address this server must not reach."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None and not _is_public(address.sixtofour):
            return False  # 2002::/16 wraps an IPv4 address; judge the one the packets end up at
    if address in METADATA_ADDRESSES:
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_loopback)


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
        address = ipaddress.ip_address(text.split("%")[0])
        if address in METADATA_ADDRESSES:  # never, even on a trusted network: it hands out cloud credentials
            raise BlockedURL(f"{parts.hostname} resolves to a cloud metadata address ({text})")
        if not allow_private and not _is_public(address):
            raise BlockedURL(f"{parts.hostname} resolves to a non-public address ({text})")
    return addresses
