"""Which network addresses a client-supplied URL (an image, a callback) may reach: the one policy.

Both the submission check (a literal IP or ``localhost`` in the URL, refused before queueing) and the
fetcher (every address a host resolves to, checked before connecting, ``net/guard.py``) ask
:func:`address_refusal`, so the two cannot disagree.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
"""Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack IPv4, AWS IPv6): refused even on a trusted
network, since they hand out credentials. They are already non-global; naming them keeps the refusal
explicit should the standard library's tables change."""


def is_public(address: IPAddress) -> bool:
    """A global unicast address, judged by where packets end up (IPv4-mapped and 6to4 unwrapped)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None and not is_public(address.sixtofour):
            return False  # 2002::/16 wraps an IPv4 address; judge the one the packets end up at
    if address in METADATA_ADDRESSES:
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_loopback)


def address_refusal(address: str | IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` must not be reached (``"a cloud metadata address"``, ``"a non-public address"``), or
    None when it may. ``allow_private`` (an operator's trusted network) lifts all but the metadata rule."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address.strip("[]").split("%")[0])
    unwrapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    if address in METADATA_ADDRESSES or unwrapped in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if not allow_private and not is_public(address):
        return "a non-public address"
    return None


def is_local_name(host: str) -> bool:
    """``localhost`` and its subdomains, which resolve to loopback without asking DNS."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")
