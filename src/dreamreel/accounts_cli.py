"""``dreamreel keys ...`` and ``dreamreel usage``: issue, list, change and revoke API keys; print the ledger.

They work on the store directly (``--database-url`` for a shared one), so no server needs to run, and every
API node sees the change within ``key_cache_seconds``. Credits are given in units (a 540p 16:9 5 s clip is
one unit, ``core/metering.py``) and kept in milli-units.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dreamreel.config import Settings
from dreamreel.core.accounts import ApiKey, KeyLimits
from dreamreel.core.errors import Conflict
from dreamreel.core.metering import MILLI_PER_UNIT, Entry, units

NONE_WORDS = ("none", "unlimited")
SettingsFrom = Callable[[argparse.Namespace], Settings]


def _count(text: str) -> int | None:
    """A limit: a non-negative integer, or ``none`` for unlimited."""
    if text.lower() in NONE_WORDS:
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number or 'none', got {text!r}")
    return int(text)


def _credits(text: str) -> int | None:
    """Units as a decimal (``12.5``), kept as milli-units; ``none`` for unlimited."""
    if text.lower() in NONE_WORDS:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number of credits or 'none', got {text!r}") from None
    if not value.is_finite() or value < 0 or value > 10**12:
        raise argparse.ArgumentTypeError(f"credits must be between 0 and 1e12, got {text!r}")
    return int((value * MILLI_PER_UNIT).to_integral_value())


def _since(text: str) -> float:
    """``7d``, ``24h``, ``30m`` ago, or an ISO date/time (UTC unless it names a zone)."""
    match = re.fullmatch(r"(\d+)([dhm])", text)
    if match:
        return time.time() - int(match.group(1)) * {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 7d, 24h or 2026-12-01, got {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _limit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpm", type=_count, default=argparse.SUPPRESS, help="creating requests per minute")
    parser.add_argument("--concurrency", type=_count, default=argparse.SUPPRESS, help="generations running at once")
    parser.add_argument("--max-queued", type=_count, default=argparse.SUPPRESS, help="generations waiting to run")
    parser.add_argument("--credits", type=_credits, default=argparse.SUPPRESS,
                        help="units this key may spend in all (540p 16:9 5 s = 1)")


def _limits_given(args: argparse.Namespace) -> dict[str, int | None]:
    names = ("rpm", "concurrency", "max_queued", "credits")
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _open(settings: Settings) -> Any:
    from dreamreel.store import open_store

    return open_store(settings.resolved_database_url)


def _find(store: Any, name_or_id: str) -> ApiKey | None:
    key = store.find_key(name_or_id)
    if key is None:
        print(f"error: no key named {name_or_id!r}", file=sys.stderr)
    return key


def _show(value: int | None, *, money: bool = False) -> str:
    if value is None:
        return "-"
    return f"{units(value):g}" if money else str(value)


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from dreamreel.api.keyring import issue_key
    from dreamreel.api.server_secret import API_KEY_PEPPER, derive_key, load_server_secret

    store = _open(settings)
    try:
        if args.keys_command == "create":
            pepper = derive_key(load_server_secret(settings), API_KEY_PEPPER)
            try:
                key, token = issue_key(store, pepper, name=args.name, limits=KeyLimits(**_limits_given(args)),
                                       admin=args.admin)
            except Conflict as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 2
            print(f"created key {key.name} ({key.key_id}); it is shown once, keep it now:", file=sys.stderr)
            print(token)
            return 0
        if args.keys_command == "list":
            table = Table("id", "name", "admin", "rpm", "concurrency", "max queued", "credits", "spent", "held",
                          "created", "revoked")
            for key in store.list_keys():
                balance = store.balance(key.owner)
                table.add_row(
                    key.key_id, key.name, "yes" if key.admin else "", _show(key.limits.rpm),
                    _show(key.limits.concurrency), _show(key.limits.max_queued),
                    _show(key.limits.credits, money=True), _show(balance.spent, money=True),
                    _show(balance.held, money=True), _date(key.created_at),
                    _date(key.revoked_at) if key.revoked_at else "", style="dim" if key.revoked_at else None,
                )
            console = Console()
            if not console.is_terminal:
                console.width = 1000
            console.print(table)
            return 0
        key = _find(store, args.key)
        if key is None:
            return 2
        if args.keys_command == "revoke":
            store.update_key(key.key_id, revoked_at=time.time())
            print(f"revoked {key.name} ({key.key_id}); every API node refuses it within "
                  f"{settings.key_cache_seconds:g} s")
            return 0
        changed = store.update_key(key.key_id, limits=_limits_given(args), admin=args.admin)
        assert changed is not None
        print(f"{changed.name}: rpm={_show(changed.limits.rpm)} concurrency={_show(changed.limits.concurrency)} "
              f"max_queued={_show(changed.limits.max_queued)} credits={_show(changed.limits.credits, money=True)} "
              f"admin={'yes' if changed.admin else 'no'}")
        return 0
    finally:
        store.close()


def cmd_usage(args: argparse.Namespace, settings: Settings) -> int:
    """The ledger of one key (or of every owner), with its totals."""
    store = _open(settings)
    try:
        owner = None
        if args.key is not None:
            key = _find(store, args.key)
            if key is None:
                return 2
            owner = key.owner
        entries = store.ledger(owner, since=args.since)
        totals = {entry: 0 for entry in Entry}
        for item in entries:
            totals[item.entry] += item.amount
            print(f"{_date(item.created_at)}  {item.owner:<20} {item.entry.value:<8} {units(item.amount):>10g}  "
                  f"{item.generation_id}  {item.detail}")
        print(f"charged {units(totals[Entry.CHARGE]):g} credits; reserved now "
              f"{units(totals[Entry.RESERVE] - totals[Entry.RELEASE]):g}; {len(entries)} entries")
        return 0
    finally:
        store.close()


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def add_parsers(
    sub: Any, add_common: Callable[[argparse.ArgumentParser], None], settings_from: SettingsFrom
) -> None:
    """The ``keys`` and ``usage`` subcommands, on ``dreamreel``'s parser."""
    keys = sub.add_parser("keys", help="issue, list, change and revoke API keys")
    keys.set_defaults(func=lambda args: cmd_keys(args, settings_from(args)))
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="issue a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="may call the operator routes (/admin/...)")
    _limit_args(create)
    listing = keys_sub.add_parser("list", help="every key with its limits and spending")
    revoke = keys_sub.add_parser("revoke", help="refuse a key from now on (its generations stay)")
    revoke.add_argument("key", help="name or id")
    change = keys_sub.add_parser("set", help="change a key's limits ('none' lifts one) or admin flag")
    change.add_argument("key", help="name or id")
    change.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None)
    _limit_args(change)
    for parser in (create, listing, revoke, change):
        add_common(parser)
    usage = sub.add_parser("usage", help="the usage ledger: reservations, releases and charges")
    usage.set_defaults(func=lambda args: cmd_usage(args, settings_from(args)))
    add_common(usage)
    usage.add_argument("--key", help="name or id (default: every owner)")
    usage.add_argument("--since", type=_since, default=0.0, help="e.g. 7d, 24h or 2026-12-01")
