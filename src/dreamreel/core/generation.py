"""The Generation record and its state machine.

One generation is one row in the store; the dialects are views of it. State names are internal: each
dialect (``api/dialects``) has its own words for them and says at submission which transitions notify
its callback (``Generation.notify_on``), so the store needs to know nothing of dialects.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dreamreel.core.failures import FailureCode
from dreamreel.core.request import GenerationRequest


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (State.COMPLETED, State.FAILED, State.CANCELLED)


ALLOWED_TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.FAILED}),
    # RUNNING -> QUEUED happens when a worker's lease lapses and the job is handed to another.
    State.RUNNING: frozenset({State.QUEUED, State.COMPLETED, State.FAILED, State.CANCELLED}),
    State.COMPLETED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}

def check_transition(current: State, new: State) -> None:
    """Raise on a transition the state machine does not have (the store contract suite checks every verb)."""
    if new not in ALLOWED_TRANSITIONS[current]:
        raise ValueError(f"illegal generation transition {current} -> {new}")


class Kind(StrEnum):
    """What a generation makes: a clip from a request, or a re-encode of an earlier clip at a higher resolution."""

    VIDEO = "video"
    UPSCALE = "upscale_video"
    """Luma's ``generation_type`` of an upscale request; ``Generation.source_id`` names the clip upscaled."""


@dataclass(frozen=True)
class Assets:
    """Storage keys (not URLs) of what a generation produced; dialects turn keys into URLs."""

    video: str | None = None
    image: str | None = None
    progress_video: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"video": self.video, "image": self.image, "progress_video": self.progress_video}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Assets:
        data = data or {}
        return cls(video=data.get("video"), image=data.get("image"), progress_video=data.get("progress_video"))


@dataclass(frozen=True)
class VideoInfo:
    """Facts about the delivered file, recorded at completion (dialects report size and duration)."""

    width: int
    height: int
    fps: int
    frames: int
    size_bytes: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Generation:
    """A snapshot of one generation row."""

    id: str
    owner: str
    dialect: str
    request: GenerationRequest
    state: State
    seed: int
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    failure_code: FailureCode | None = None
    failure_reason: str | None = None
    """For people: what went wrong, naming the field or exception; ``failure_code`` is what code branches on."""
    progress_step: int = 0
    progress_total: int = 0
    assets: Assets = field(default_factory=Assets)
    video_info: VideoInfo | None = None
    attempts: int = 0
    priority: int = 0
    """Higher runs first; equal priorities run in submission order."""
    start_deadline: float | None = None
    """Unix time after which a still-queued job is failed instead of started (fal's request timeout)."""
    cancel_requested: bool = False
    worker_id: str | None = None
    lease_expires_at: float | None = None
    notify_on: frozenset[State] = frozenset()
    """Transitions that POST ``request.callback_url``: chosen by the dialect that created the generation."""
    kind: Kind = Kind.VIDEO
    source_id: str | None = None
    """For an upscale: the completed generation whose video is re-encoded (its ``request`` is copied, with
    the target ``resolution``)."""
    request_id: str | None = None
    """The ``X-Request-Id`` of the HTTP request that created it: the worker's and the webhook dispatcher's log
    lines for this generation carry it, so an operator follows one request from the API to the MP4 and its
    callbacks."""

    @classmethod
    def new(cls, *, owner: str, dialect: str, request: GenerationRequest, seed: int, **extra: Any) -> Generation:
        """A freshly queued generation with a new id, created now."""
        now = time.time()
        return cls(id=str(uuid.uuid4()), owner=owner, dialect=dialect, request=request, state=State.QUEUED,
                   seed=seed, created_at=now, updated_at=now, **extra)

    @property
    def model(self) -> str:
        return self.request.model

    def evolve(self, **changes: Any) -> Generation:
        return replace(self, **changes)

    @property
    def inference_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at
