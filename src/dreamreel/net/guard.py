"""Refuse outbound requests to loopback, private, link-local and metadata addresses.

A client-supplied URL (a callback, an image) must not let them probe the server's own network.
The check resolves the host and inspects every address it maps to.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class BlockedURL(Exception):
    """The URL is not http(s) or points at an address this server must not reach."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve_checked(url: str, *, allow_private: bool) -> list[str]:
    """Return the addresses ``url``'s host resolves to, raising ``BlockedURL`` if any is forbidden."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedURL(f"only http(s) URLs with a host are allowed, got {url[:100]!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedURL(f"cannot resolve {parts.hostname}: {exc}") from None
    addresses = sorted({info[4][0] for info in infos})
    if not allow_private:
        for text in addresses:
            if not _is_public(ipaddress.ip_address(text.split("%")[0])):
                raise BlockedURL(f"{parts.hostname} resolves to a non-public address ({text})")
    return addresses
