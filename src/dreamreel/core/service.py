"""The verbs every dialect calls: submit, upscale, get, list, delete, cancel. Dialects never touch the store.

An upscale is a generation of its own (its own id, state, callbacks and assets) rather than the source
updated in place: the Luma SDK types a generation's ``request`` as one of several request kinds, one of
them the upscale request (``generation_type: "upscale_video"``), and the source's video must stay valid
for extends and other upscales. It is durable work like any generation; a worker re-encodes the source's
delivered clip (``worker/reencode.py``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from dreamreel.core.capabilities import DEFAULT_FAMILIES, check_loras, check_supported
from dreamreel.core.conditioning import UPLOAD_SCHEME, check_image_source, check_inputs, check_video_source
from dreamreel.core.edits import GENERATION_SCHEME, SourceFacts, output_of, provisional_output
from dreamreel.core.errors import Conflict, InvalidRequest, NotFound, NotSupported
from dreamreel.core.filestore import FileStore
from dreamreel.core.generation import Generation, Kind, State
from dreamreel.core.jobstore import Event, JobStore
from dreamreel.core.logs import job_fields, request_id
from dreamreel.core.metering import MILLI_PER_UNIT, units
from dreamreel.core.request import MAX_LONG_SIDE, GenerationRequest, Resolution

log = logging.getLogger("dreamreel.service")

MAX_PAGE = 1000
UNLIMITED_CREDITS = 1_000_000
"""The balance (units) reported to a key with no credit limit, less what it spent: Luma's SDK wants a number."""


MemoryCheck = Callable[[GenerationRequest], None]
"""Raises a 4xx for a request whose clip cannot fit its model's GPU memory budget (``api/memory_guard.py`` builds
it from the models config and the checkpoints; core reads neither)."""

UploadFacts = Callable[[str, str], SourceFacts | None]
"""(owner, upload id) -> the upload's video facts from its header, or None when it is not a video (the API
process reads them with ``media/video_source.py``; core reads no files)."""


class GenerationService:
    def __init__(
        self, store: JobStore, files: FileStore, *, families: Mapping[str, str] | None = None,
        allow_private_urls: bool = False, upload_video_facts: UploadFacts | None = None,
        adapters: Mapping[str, frozenset[str]] | None = None, memory_check: MemoryCheck | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.families = dict(families) if families else None
        """Public model name -> backend family, for the per-family capability table."""
        self.allow_private_urls = allow_private_urls
        self.upload_video_facts = upload_video_facts
        self.adapters = dict(adapters) if adapters else None
        """Public model name -> the LoRA adapter names its config lists (requests may name only those)."""
        self.memory_check = memory_check
        self.on_submitted: Callable[[Generation], None] | None = None
        """Told of every job this service created (the API counts them for its metrics)."""
        self.on_stopped: Callable[[Generation], None] | None = None
        """Told of every unfinished job a cancel or delete reached, as it was (queued: it ends now; running: its
        worker ends it)."""

    @property
    def models(self) -> tuple[str, ...]:
        """The public model names this server serves (its models config's, else the built-in ones)."""
        return tuple(self.families or DEFAULT_FAMILIES)

    def submit(
        self, request: GenerationRequest, *, owner: str, dialect: str, notify_on: frozenset[State] = frozenset(),
        priority: int = 0, start_timeout_s: float | None = None,
    ) -> Generation:
        """Validate capabilities and inputs, then persist the job; it is durable when this returns."""
        check_supported(request, self.families)
        check_loras(request, self.adapters)
        check_inputs(request, owner=owner, get_generation=self.store.get, upload_exists=self.files.upload_exists,
                     allow_private=self.allow_private_urls)
        request = self._resolve_edit(request, owner)
        if self.memory_check is not None:  # after the edit's output is known: its length is the clip's
            self.memory_check(request)
        generation = Generation.new(
            owner=owner,
            dialect=dialect,
            request=request,
            # The caller's, else chosen once; stored (and reported back), so a job re-run after a worker crash,
            # or a new request with this seed, produces the same clip.
            seed=request.seed if request.seed is not None else secrets.randbelow(2**31),
            priority=priority,
            start_deadline=time.time() + start_timeout_s if start_timeout_s else None,
            notify_on=notify_on,
            request_id=request_id.get(),
        )
        return self._created(self.store.create(generation))

    def _created(self, generation: Generation) -> Generation:
        log.info("queued %s %s for %s", generation.kind.value, generation.id, generation.model,
                 extra=job_fields(generation, "queued"))
        if self.on_submitted is not None:
            self.on_submitted(generation)
        return generation

    def _resolve_edit(self, request: GenerationRequest, owner: str) -> GenerationRequest:
        """An edit's request with its output decided from the source where the source is here (a generation or
        an upload of the caller: length, size and placement are checked now, a 4xx), else
        :func:`provisional_output` (a URL: the worker fetches and checks it)."""
        edit = request.edit
        if edit is None:
            return request
        check_video_source(edit.source, "media.url", allow_private=self.allow_private_urls)
        if edit.first_frame is not None:
            check_image_source(edit.first_frame, "first_frame.url", allow_private=self.allow_private_urls)
            if edit.first_frame[:7].lower() == UPLOAD_SCHEME and not self.files.upload_exists(owner,
                                                                                           edit.first_frame[7:]):
                raise NotFound(f"first_frame.url: upload {edit.first_frame[7:][:80]!r} not found", field="first_frame")
        facts = self.source_facts(edit.source, owner)
        return provisional_output(request) if facts is None else output_of(request, facts)

    def source_facts(self, source: str, owner: str) -> SourceFacts | None:
        """What the API process can know of an edit's source: a completed generation's recorded video, an
        upload's header; None for a URL. 404 for what is not the caller's, 409 for an unfinished generation,
        422 for an upload that is not a video."""
        lowered = source[:16].lower()
        if lowered.startswith(GENERATION_SCHEME):
            gid = source[len(GENERATION_SCHEME):]
            generation = self.store.get(gid)
            if generation is None or generation.owner != owner:
                raise NotFound(f"media.url: generation {gid[:80]} not found", field="media")
            info = generation.video_info
            if generation.state is not State.COMPLETED or info is None or not generation.assets.video:
                raise Conflict(f"media.url: generation {gid} is {generation.state.value}; only a completed "
                               "generation can be edited", field="media")
            return SourceFacts(width=info.width, height=info.height, fps=info.fps, frames=info.frames)
        if lowered.startswith(UPLOAD_SCHEME):
            upload_id = source[len(UPLOAD_SCHEME):]
            if not self.files.upload_exists(owner, upload_id):
                raise NotFound(f"media.url: upload {upload_id[:80]!r} not found", field="media")
            facts = self.upload_video_facts(owner, upload_id) if self.upload_video_facts else None
            if facts is None:
                raise InvalidRequest(f"media.url: upload {upload_id[:80]!r} is not a video (MP4, MOV or WebM)",
                                     field="media")
            return facts
        return None

    def upscale(
        self, source_id: str, *, resolution: Resolution, owner: str, dialect: str,
        status_words: Mapping[State, str], notify_on: frozenset[State] = frozenset(),
        callback_url: str | None = None,
    ) -> Generation:
        """Queue an upscale of ``source_id`` (the caller's: else 404; completed: else 409, its state named in
        ``status_words``) to ``resolution`` (higher than its own: else 422)."""
        source = self.get(source_id, owner=owner)
        if source.state is not State.COMPLETED or source.video_info is None or source.assets.video is None:
            raise Conflict(f"generation {source_id} is {status_words[source.state]}; "
                           "only a completed generation can be upscaled")
        current = source.request.resolution
        if resolution.short_side <= current.short_side:
            higher = [r.value for r in Resolution if r.short_side > current.short_side]
            hint = f"upscale to one of {', '.join(higher)}" if higher else "it is already at the highest resolution"
            raise NotSupported(
                f"resolution {resolution.value} is not higher than the source's {current.value}; {hint}",
                field="resolution",
            )
        size = _scaled_size(source.request.size, resolution) if source.request.size else None
        if size is not None and max(size) > MAX_LONG_SIDE:
            raise NotSupported(f"resolution {resolution.value} would make the source's long side "
                               f"{max(size)} px, past {MAX_LONG_SIDE}", field="resolution")
        try:
            request = GenerationRequest.model_validate(
                source.request.model_dump() | {"resolution": resolution, "size": size, "callback_url": callback_url}
            )
        except ValidationError as exc:
            raise InvalidRequest(f"invalid callback_url: {exc.errors()[0]['msg']}", field="callback_url") from exc
        generation = Generation.new(owner=owner, dialect=dialect, request=request, seed=source.seed,
                                    kind=Kind.UPSCALE, source_id=source.id, notify_on=notify_on,
                                    request_id=request_id.get())
        return self._created(self.store.create(generation))

    def get(self, generation_id: str, *, owner: str) -> Generation:
        generation = self.store.get(generation_id)
        if generation is None or generation.owner != owner:
            raise NotFound(f"generation {generation_id} not found")
        return generation

    def list(self, *, owner: str, limit: int, offset: int) -> tuple[list[Generation], int]:
        limit = max(0, min(limit, MAX_PAGE))
        return self.store.list(owner, limit, max(0, offset)), self.store.count(owner)

    def delete(self, generation_id: str, *, owner: str) -> None:
        generation = self.get(generation_id, owner=owner)
        before = self.store.delete(generation.id)  # as it was under the delete's lock: no race with completion
        if before is not None and before.state.is_terminal:
            self.files.delete_generation(generation.id)
        elif before is not None:
            self._stopped(before)
        # a running one: its worker sees the delete, stops, and removes what it wrote

    def cancel(self, generation_id: str, *, owner: str) -> Generation:
        generation = self.get(generation_id, owner=owner)
        after = self.store.request_cancel(generation.id) or generation
        if not generation.state.is_terminal:
            self._stopped(generation)
        return after

    def _stopped(self, before: Generation) -> None:
        """A cancel or delete landed on an unfinished generation (``before``: as it was)."""
        log.info("%s %s asked to stop while %s", before.kind.value, before.id, before.state.value,
                 extra=job_fields(before, "cancel"))
        if self.on_stopped is not None:
            self.on_stopped(before)

    def charged(self, generation: Generation) -> int | None:
        """Milli-units the ledger charged for this generation (None until it completed)."""
        return self.store.charged(generation.id) if generation.state is State.COMPLETED else None

    def credit_balance(self, owner: str) -> float:
        """What the owner may still spend, in units; an owner without a credit limit starts from
        :data:`UNLIMITED_CREDITS`."""
        balance = self.store.balance(owner)
        credits = balance.credits if balance.credits is not None else UNLIMITED_CREDITS * MILLI_PER_UNIT
        return units(credits - balance.spent - balance.held)

    def queue_position(self, generation_id: str) -> int | None:
        return self.store.queue_position(generation_id)

    def events(self, generation_id: str, after_id: int = 0) -> list[Event]:
        return self.store.events(generation_id, after_id)


def _scaled_size(size: tuple[int, int], resolution: Resolution) -> tuple[int, int]:
    """An explicit size brought to ``resolution``'s short side, its aspect kept (sides even): what an upscale
    of a clip made at that size delivers (``GenerationRequest.output_size``) and is billed for."""
    width, height = size
    scale = resolution.short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
