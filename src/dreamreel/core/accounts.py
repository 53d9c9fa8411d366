"""Who may call, and what they may spend: API keys, the usage ledger and idempotent replays.

These records live in the job store (``core.jobstore``) beside the generations, so every API node and
worker sees one truth: a key revoked on one node is refused by all (within ``key_cache_seconds``), a
limit holds across API processes, and a charge is written in the same transaction as the completion it
bills.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamreel.core.metering import Entry


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; ``None`` means unlimited."""

    rpm: int | None = None
    """Creating requests (POSTs) per minute."""
    concurrency: int | None = None
    """Generations running at once; more wait in the queue."""
    max_queued: int | None = None
    """Generations waiting in the queue; a submit beyond it is a 429."""
    credits: int | None = None
    """Milli-units this key may spend in all (charged plus reserved)."""


@dataclass(frozen=True)
class ApiKey:
    """A key issued by ``dreamreel keys create``: only a keyed hash of its secret is stored."""

    key_id: str
    name: str
    owner: str
    """The owner id its generations, uploads and ledger entries carry (``key-<key_id>``)."""
    secret_hash: str
    created_at: float
    admin: bool = False
    limits: KeyLimits = field(default_factory=KeyLimits)
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    owner: str
    generation_id: str
    entry: Entry
    amount: int
    """Milli-units (``core.metering``)."""
    created_at: float
    detail: str


@dataclass(frozen=True)
class Balance:
    """A key's money, in milli-units: ``credits`` granted, ``spent`` (charged), ``held`` (reserved)."""

    credits: int | None
    spent: int
    held: int

    @property
    def available(self) -> int | None:
        return None if self.credits is None else self.credits - self.spent - self.held


@dataclass(frozen=True)
class StoredResponse:
    """The first response to an ``Idempotency-Key``, replayed to every retry of the same request."""

    status: int
    content_type: str
    body: bytes
