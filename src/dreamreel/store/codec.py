"""Generation <-> JSON/row conversion shared by every store backend."""

from __future__ import annotations

import json
from typing import Any

from dreamreel.core.failures import FailureCode, legacy_failure_code
from dreamreel.core.generation import Assets, Generation, Kind, State, VideoInfo
from dreamreel.core.request import GenerationRequest


def video_info_to_json(info: VideoInfo | None) -> str | None:
    if info is None:
        return None
    return json.dumps(
        {"width": info.width, "height": info.height, "fps": info.fps, "frames": info.frames,
         "size_bytes": info.size_bytes}
    )


def video_info_from_json(text: str | None) -> VideoInfo | None:
    return VideoInfo(**json.loads(text)) if text else None


def generation_from_row(row: dict[str, Any]) -> Generation:
    return Generation(
        id=row["id"],
        owner=row["owner"],
        dialect=row["dialect"],
        request=GenerationRequest.model_validate_json(row["request"]),
        state=State(row["state"]),
        seed=int(row["seed"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        failure_code=_failure_code(row),
        failure_reason=row["failure_reason"],
        progress_step=row["progress_step"],
        progress_total=row["progress_total"],
        assets=Assets.from_json(json.loads(row["assets"])),
        video_info=video_info_from_json(row["video_info"]),
        attempts=row["attempts"],
        priority=row["priority"],
        start_deadline=row["start_deadline"],
        cancel_requested=bool(row["cancel_requested"]),
        worker_id=row["worker_id"],
        lease_expires_at=row["lease_expires_at"],
        kind=Kind(row.get("kind") or Kind.VIDEO),
        source_id=row.get("source_id"),
        notify_on=frozenset(State(word) for word in (row.get("notify_on") or "").split(",") if word),
        request_id=row.get("request_id"),
    )


def _failure_code(row: dict[str, Any]) -> FailureCode | None:
    if "failure_code" not in row:  # an outbox snapshot written before failure codes existed
        return legacy_failure_code(row["state"], row["failure_reason"])
    return FailureCode(row["failure_code"]) if row["failure_code"] else None


def generation_to_row(generation: Generation) -> dict[str, Any]:
    return {
        "id": generation.id,
        "owner": generation.owner,
        "dialect": generation.dialect,
        "request": generation.request.model_dump_json(),
        "callback_url": generation.request.callback_url,
        "state": generation.state.value,
        "seed": generation.seed,
        "created_at": generation.created_at,
        "updated_at": generation.updated_at,
        "started_at": generation.started_at,
        "finished_at": generation.finished_at,
        "failure_code": generation.failure_code.value if generation.failure_code else None,
        "failure_reason": generation.failure_reason,
        "progress_step": generation.progress_step,
        "progress_total": generation.progress_total,
        "assets": json.dumps(generation.assets.to_json()),
        "video_info": video_info_to_json(generation.video_info),
        "attempts": generation.attempts,
        "priority": generation.priority,
        "start_deadline": generation.start_deadline,
        "cancel_requested": int(generation.cancel_requested),
        "worker_id": generation.worker_id,
        "lease_expires_at": generation.lease_expires_at,
        "kind": generation.kind.value,
        "source_id": generation.source_id,
        "notify_on": ",".join(sorted(state.value for state in generation.notify_on)),
        "request_id": generation.request_id,
    }


def snapshot_to_json(generation: Generation) -> str:
    """A frozen copy of a generation, stored with an outbox row so a webhook shows that moment."""
    return json.dumps(generation_to_row(generation))


def snapshot_from_json(text: str) -> Generation:
    return generation_from_row(json.loads(text))
