"""The job store's contract: the durable verbs every backend (SQLite today) implements, and what each promises.

Rules every verb keeps:

- **Atomic.** A verb is one transaction: its state change, its event line and its outbox row commit
  together or not at all, and a caller that got an answer can rely on it surviving a crash.
- **Fenced.** Verbs a worker calls about a job it runs (``heartbeat``, ``record_progress``,
  ``record_preview``, ``release``, ``complete``, ``fail`` with a worker id, ``finish_cancelled``) change
  the row only while it is ``running`` and leased to *that* worker; otherwise they change nothing and
  answer False. A worker whose lease lapsed, and whose job went to another, can never overwrite the new
  owner's progress or result.
- **Outbox.** Every transition into a state in the generation's ``notify_on`` writes one delivery for
  its ``request.callback_url`` (when it has one) in the same transaction, holding a snapshot of the
  generation as of that transition. Deliveries of one generation go out in the order they were written.
- **Transitions** follow ``core.generation.ALLOWED_TRANSITIONS``; nothing else moves a state.
- **Attempts.** ``claim`` counts an attempt; a lapsed lease re-queues the job until it has had
  :data:`MAX_ATTEMPTS`, then fails it with ``FailureCode.WORKER_LOST``. ``release`` (a worker shutting
  down cleanly) hands the job back without counting the attempt.
- **Deleted** generations are invisible to ``get``, ``list``, ``count`` and ``claim``, and notify nothing
  more: their owner was told they are gone.
- **Workers** announce themselves (:class:`WorkerInfo`, one row per worker id) so operators can see them;
  the row is a report, not a lock: nothing about jobs depends on it.

``tests/contract/`` is the executable form of this page: every backend runs the same suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dreamreel.core.accounts import ApiKey, Balance, LedgerEntry, StoredResponse
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Assets, Generation, VideoInfo

MAX_ATTEMPTS = 3
"""A job whose worker died this many times is failed instead of re-queued (a poison job)."""


@dataclass(frozen=True)
class Heartbeat:
    """Answer to a lease renewal: whether the worker still owns the job and whether to stop."""

    owned: bool
    cancel_requested: bool


@dataclass(frozen=True)
class Event:
    """A progress or log line attached to a generation (fal shows these as ``logs``)."""

    id: int
    generation_id: str
    timestamp: float
    level: str
    message: str


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery taken from the outbox: a generation snapshot to POST to ``url``."""

    id: int
    generation_id: str
    url: str
    snapshot: Generation
    attempts: int
    """Attempts including this one."""


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker last announced about itself (``JobStore.announce_worker``), for operators to read."""

    worker_id: str
    host: str
    """``socket.gethostname()`` of its machine."""
    pid: int
    device: str
    """The torch device it renders on (its ``device`` setting)."""
    models: tuple[str, ...]
    """Public model names whose checkpoint it has loaded so far."""
    current_job: str | None
    """The generation it is running, or None while idle."""
    started_at: float
    last_seen: float
    """When it last announced (``time.time()`` on its machine): at start, after a model loads, when a job
    starts or ends, on every job heartbeat and at least every ``heartbeat_seconds`` while idle."""


class JobStore(Protocol):
    local_reads: bool
    """True when a read never waits on anything outside this machine's memory and page cache (SQLite in WAL
    mode: readers never wait for writers), so the API may read on its event loop; False when a read is a network
    round trip (PostgreSQL): the API reads in its read pool (``api/reads.py``)."""

    # --- API side -------------------------------------------------------------------------
    def create(self, generation: Generation) -> Generation:
        """Insert a ``queued`` generation and its "accepted" event; durable when this returns."""
        ...

    def get(self, generation_id: str) -> Generation | None:
        """The generation, or None when it does not exist or was deleted. Not owner-checked: the caller is."""
        ...

    def list(self, owner: str, limit: int, offset: int) -> list[Generation]:
        """``owner``'s generations, newest first (submission order), deleted ones left out."""
        ...

    def count(self, owner: str) -> int:
        """How many generations :meth:`list` pages through."""
        ...

    def queue_position(self, generation_id: str) -> int | None:
        """Queued jobs that :meth:`claim` will take before this one (0: next); None when it is not queued."""
        ...

    def delete(self, generation_id: str) -> Generation | None:
        """Hide a generation from every read; a queued one is cancelled at once, a running one is asked to
        stop (``cancel_requested``; its worker finishes it cancelled). No delivery is written for either.
        Returns it as it was, or None."""
        ...

    def request_cancel(self, generation_id: str) -> Generation | None:
        """Cancel a queued job at once (``cancelled``, ``FailureCode.CANCELLED``); ask a running one to stop;
        leave a finished one alone. Returns the generation after the change, or None when it does not exist."""
        ...

    def events(self, generation_id: str, after_id: int = 0) -> list[Event]:
        """The generation's event lines with an id above ``after_id``, oldest first."""
        ...

    def housekeep(self) -> None:
        """Time-based transitions nobody else triggers: a lapsed lease re-queues its job (fails it after
        :data:`MAX_ATTEMPTS`; ends it ``cancelled`` when a cancel or delete was requested, since nobody wants a
        re-run), a passed start deadline fails a queued job (``REQUEST_TIMEOUT``). Safe to call from any
        process at any time; :meth:`claim` runs it first."""
        ...

    # --- worker side ----------------------------------------------------------------------
    def claim(self, worker_id: str, lease_s: float) -> Generation | None:
        """Take the next queued job (highest priority, then oldest) for ``worker_id``: ``running``, leased
        for ``lease_s``, one more attempt, a preview of an earlier attempt dropped. No two callers ever get
        the same job. None when the queue is empty."""
        ...

    def heartbeat(self, generation_id: str, worker_id: str, lease_s: float) -> Heartbeat:
        """Extend the lease by ``lease_s`` if ``worker_id`` still holds it (fenced); relay a cancel request."""
        ...

    def record_progress(self, generation_id: str, worker_id: str, step: int, total: int) -> bool:
        """Store denoising progress (fenced)."""
        ...

    def record_preview(self, generation_id: str, worker_id: str, key: str) -> bool:
        """Point ``assets.progress_video`` at ``key`` while the job runs on this worker (fenced)."""
        ...

    def release(self, generation_id: str, worker_id: str) -> bool:
        """Hand a job back to the queue without counting the attempt (a worker shutting down; fenced)."""
        ...

    def add_event(self, generation_id: str, level: str, message: str) -> None:
        """Append an event line (not fenced: a line from a stale worker is still true of that attempt)."""
        ...

    def complete(self, generation_id: str, worker_id: str, assets: Assets, video: VideoInfo) -> bool:
        """``running`` -> ``completed`` with its files and facts (fenced; outbox)."""
        ...

    def fail(self, generation_id: str, worker_id: str | None, code: FailureCode, reason: str) -> bool:
        """``running`` or ``queued`` -> ``failed`` (fenced when ``worker_id`` is given; outbox)."""
        ...

    def finish_cancelled(self, generation_id: str, worker_id: str) -> bool:
        """``running`` -> ``cancelled`` once its worker stopped for a cancel request (fenced; outbox)."""
        ...

    def wait_for_work(self, timeout_s: float) -> None:
        """Block until a job may have been queued (a create, a release, a re-queue) or ``timeout_s`` passed.

        An idle worker calls this between ``claim`` attempts. A backend with notifications (PostgreSQL's
        ``LISTEN``) returns at once on one; one without simply waits, and the worker polls."""
        ...

    # --- workers --------------------------------------------------------------------------
    def announce_worker(self, info: WorkerInfo) -> None:
        """Insert or replace the row of ``info.worker_id`` with ``info`` (at worker start, after a model loads,
        when a job starts or ends, and from the heartbeat). Not fenced: a worker only speaks for itself."""
        ...

    def list_workers(self, alive_within_s: float | None = None) -> list[WorkerInfo]:
        """Announced workers, newest ``last_seen`` first; with ``alive_within_s``, only those seen within that
        many seconds of now (a crashed worker's row stays until forgotten, and drops out of this window)."""
        ...

    def queue_counts(self) -> list[tuple[str, str, int]]:
        """``(state, model, jobs)`` of the queued and running generations: the operator's queue depth."""
        ...

    def outbox_backlog(self) -> int:
        """Webhook deliveries still to make (neither delivered nor abandoned)."""
        ...

    def recent_failures(self, limit: int) -> list[Generation]:
        """The last ``limit`` failed generations, newest first."""
        ...

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker's row (a clean shutdown); nothing happens when there is none."""
        ...

    # --- accounts (core.accounts) -----------------------------------------------------------
    def create_key(self, key: ApiKey) -> ApiKey:
        """Store a new key; a name already taken is a ``Conflict``."""
        ...

    def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not."""
        ...

    def find_key(self, name_or_id: str) -> ApiKey | None:
        """The key with this name or id."""
        ...

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        ...

    def update_key(self, key_id: str, *, admin: bool | None = None, revoked_at: float | None = None,
                   limits: dict[str, int | None] | None = None) -> ApiKey | None:
        """Set the named limits (None lifts one), the admin flag, or revoke (the first revocation time is
        kept); returns the key after the change, or None when there is no such key."""
        ...

    def balance(self, owner: str) -> Balance:
        """The owner's credits (its key's; None: unlimited), spent (charged) and held (reserved)."""
        ...

    def ledger(self, owner: str | None = None, since: float = 0.0) -> list[LedgerEntry]:
        """Ledger entries from ``since`` on, in the order written; kept after their generations are gone.

        ``create`` reserves a generation's cost in its own transaction and refuses (nothing written) when
        the owner's key is at ``max_queued`` (``TooManyRequests``) or cannot afford it
        (``InsufficientCredits``); every ending transition releases the reservation and a completion
        charges the delivered clip, each at most once per generation."""
        ...

    def charged(self, generation_id: str) -> int | None:
        """Milli-units charged for a completed generation; None otherwise."""
        ...

    def count_request(self, owner: str, now: float | None = None) -> tuple[int, float]:
        """Count one creating request in the owner's current one-minute window: (count including this
        one, seconds left in the window). Every node counts in the same row."""
        ...

    def begin_idempotent(self, owner: str, key: str, fingerprint: str) -> StoredResponse | None:
        """None: first use, now recorded in progress (run the request, then :meth:`finish_idempotent`).
        A stored response: replay it. Another fingerprint under the key: ``InvalidRequest``; the first
        still in progress: ``Conflict``. Records last 24 h."""
        ...

    def finish_idempotent(self, owner: str, key: str, response: StoredResponse | None) -> None:
        """Store the first response for replays, or forget the key (None) so a retry runs anew."""
        ...

    # --- webhook outbox -------------------------------------------------------------------
    def claim_deliveries(self, limit: int, lease_s: float) -> list[Delivery]:
        """Take up to ``limit`` due deliveries, oldest first, at most the earliest unfinished one per
        generation; each is hidden from other claimers for ``lease_s`` while it is sent."""
        ...

    def delivery_succeeded(self, delivery_id: int) -> None:
        """Mark it delivered (the next delivery of its generation becomes due)."""
        ...

    def delivery_failed(self, delivery_id: int, error: str, retry_at: float | None) -> None:
        """Retry it at ``retry_at``, or abandon it (None), recording ``error``."""
        ...

    def close(self) -> None:
        """Release connections and pools."""
        ...

    # --- retention; handing deliveries back -----------------------------------------------
    def finished_before(self, cutoff: float, limit: int) -> list[Generation]:
        """Up to ``limit`` generations that finished (``completed``, ``failed``, ``cancelled``) before
        ``cutoff`` (Unix time), oldest first, deleted ones included (their rows still exist)."""
        ...

    def purge_generations(self, generation_ids: list[str]) -> list[str]:
        """Remove the rows of these generations for good, with their events and outbox rows, in one
        transaction; an id that is not finished is skipped. Metering (ledger) rows are kept: they outlive
        the generations they bill. Returns the ids removed. Files are the caller's to delete."""
        ...

    def defer_deliveries(self, delivery_ids: list[int], retry_at: float) -> None:
        """Hand claimed, unsent deliveries back to the outbox, due again at ``retry_at``, without counting
        the claim as an attempt (the dispatcher had no free lane for their destination)."""
        ...
