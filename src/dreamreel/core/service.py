"""The verbs every dialect calls: submit, get, list, delete, cancel. Dialects never touch the store."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping

from dreamreel.core.capabilities import check_supported
from dreamreel.core.conditioning import check_inputs
from dreamreel.core.errors import NotFound
from dreamreel.core.generation import Generation
from dreamreel.core.request import GenerationRequest
from dreamreel.files import LocalFiles
from dreamreel.store.base import Event, JobStore

MAX_PAGE = 1000


class GenerationService:
    def __init__(
        self, store: JobStore, storage: LocalFiles, *, families: Mapping[str, str] | None = None,
        allow_private_urls: bool = False,
    ) -> None:
        self.store = store
        self.storage = storage
        self.families = dict(families) if families else None
        """Public model name -> backend family, for the per-family capability table."""
        self.allow_private_urls = allow_private_urls

    def submit(
        self, request: GenerationRequest, *, owner: str, dialect: str, priority: int = 0,
        start_timeout_s: float | None = None,
    ) -> Generation:
        """Validate capabilities and inputs, then persist the job; it is durable when this returns."""
        check_supported(request, self.families)
        check_inputs(request, owner=owner, get_generation=self.store.get, upload_exists=self.storage.upload_exists,
                     allow_private=self.allow_private_urls)
        generation = Generation.new(
            owner=owner,
            dialect=dialect,
            request=request,
            # Chosen once and stored, so a job re-run after a worker crash produces the same clip.
            seed=secrets.randbelow(2**31),
            priority=priority,
            start_deadline=time.time() + start_timeout_s if start_timeout_s else None,
        )
        return self.store.create(generation)

    def upload(self, data: bytes, *, owner: str) -> str:
        """Keep an image for later keyframes (the caller checked it decodes); returns its id."""
        return self.storage.save_upload(owner, data)

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
        self.store.delete(generation.id)
        if generation.state.is_terminal:
            self.storage.delete_generation(generation.id)

    def cancel(self, generation_id: str, *, owner: str) -> Generation:
        generation = self.get(generation_id, owner=owner)
        return self.store.request_cancel(generation.id) or generation

    def queue_position(self, generation_id: str) -> int | None:
        return self.store.queue_position(generation_id)

    def events(self, generation_id: str, after_id: int = 0) -> list[Event]:
        return self.store.events(generation_id, after_id)
