"""Where a server may listen: a start-up check that an operator cannot put an open server on a network.

Without any API key every caller is the one local user, so such a server listens on loopback only unless
started with ``--insecure-no-auth`` (and says so in its log). On a non-loopback address asset URLs must be
built from a configured ``public_url``: the bind address (``0.0.0.0``) is no address a client can use, and
the request's ``Host`` header is the caller's to choose.
"""

from __future__ import annotations

import ipaddress
import logging

from dreamreel.api.keyring import KeyRing
from dreamreel.config import SettingError, Settings

log = logging.getLogger("dreamreel.api")


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, keyring: KeyRing) -> None:
    """Raise :class:`SettingError` for a server that must not start; log how it is protected otherwise."""
    loopback = is_loopback(settings.host)
    if not loopback and not settings.public_url:
        raise SettingError(f"listening on {settings.host} needs DREAMREEL_PUBLIC_URL (--public-url): asset URLs "
                           "are built from it, never from the bind address or a request's Host header")
    if keyring.auth_required():
        log.info("API keys required on every route")
        return
    if loopback:
        log.warning("no API keys: serving without authentication, on loopback (%s) only", settings.host)
        return
    if not settings.insecure_no_auth:
        raise SettingError(f"no API keys exist, so the server refuses to listen on {settings.host} (not loopback): "
                           "create one with `dreamreel keys create --name NAME`, or start with --insecure-no-auth")
    log.warning("no API keys and --insecure-no-auth: anyone who reaches %s:%d can use this server",
                settings.host, settings.port)
