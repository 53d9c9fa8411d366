"""The routes' response models pass every rendered object through unchanged, byte for byte.

FastAPI validates a route's return value against its ``response_model`` and sends the validated value
serialized again (``api/schema.py``). That must neither drop, reorder nor reformat anything the SDKs read, and
must accept every state a generation can be in, including those the property-based run (no workers) never
reaches. Generations are driven through a real SQLite store into each state, rendered by each dialect, and
compared with what the route sent before it had a model: ``json.dumps`` of the dict, as ``JSONResponse``
renders it. fal's status (sent as a ``JSONResponse``, never validated at run time) must match its schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from dreamreel.api.dialects import aiml, fal, luma, openai
from dreamreel.api.dialects.fal_schema import FalQueueStatus
from dreamreel.api.urls import FileUrls
from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Assets, Generation, Kind, VideoInfo
from dreamreel.core.jobstore import JobStore
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, ImageKeyframe, Keyframes, Resolution
from dreamreel.core.service import GenerationService
from dreamreel.files import LocalFiles
from dreamreel.store import open_store

OWNER = "local"
URLS = FileUrls("http://127.0.0.1:8000", b"s" * 32, 3600)
WORKER = "worker-1"


def route_model(router: APIRouter, path: str, method: str) -> Any:
    route = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == path and method in r.methods)
    assert route.response_model is not None, f"{method} {path} has no response model"
    return route.response_model


def sent_through(model: Any, rendered: dict) -> bytes:
    """What FastAPI sends for ``rendered`` returned from a route with ``response_model=model``."""
    adapter = TypeAdapter(model)
    return adapter.dump_json(adapter.validate_python(rendered, from_attributes=True), by_alias=True)


def sent_plain(rendered: dict) -> bytes:
    """What ``JSONResponse`` sends for ``rendered`` (the route without a model)."""
    return json.dumps(rendered, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield store
    store.close()


def new(store: JobStore, **request: Any) -> Generation:
    fields = {"prompt": "a red ball ü ✓", "resolution": Resolution.P540, **request}
    return store.create(Generation.new(owner=OWNER, dialect="luma", request=GenerationRequest(**fields), seed=7))


def claimed(store: JobStore, **request: Any) -> Generation:
    generation = new(store, **request)
    got = store.claim(WORKER, 30.0)
    assert got is not None and got.id == generation.id
    return got


def every_state(store: JobStore) -> list[Generation]:
    """Running (with progress, a preview and log lines), completed, failed for each reason, cancelled,
    queued (plain, with every optional field, an upscale)."""
    ids = []
    running = claimed(store, loop=True, duration_s=9)
    store.record_progress(running.id, WORKER, 3, 8)
    store.record_preview(running.id, WORKER, f"generations/{running.id}/progress.mp4")
    store.add_event(running.id, "INFO", "step 3/8")
    store.add_event(running.id, "WARNING", "slow step")
    ids.append(running.id)
    done = claimed(store, keyframes=Keyframes(frame0=ImageKeyframe(url="https://example.com/a.png")))
    video = VideoInfo(width=960, height=540, fps=24, frames=121, size_bytes=123_456)
    assets = Assets(video=f"generations/{done.id}/video.mp4", image=f"generations/{done.id}/poster.jpg")
    assert store.complete(done.id, WORKER, assets, video)
    ids.append(done.id)
    for code in (FailureCode.INTERNAL, FailureCode.INPUT, FailureCode.REQUEST_TIMEOUT):
        failed = claimed(store)
        assert store.fail(failed.id, WORKER, code, f"{code.value}: it went wrong")
        ids.append(failed.id)
    cancelled = new(store)
    store.request_cancel(cancelled.id)
    ids.append(cancelled.id)
    ids.append(new(store).id)
    ids.append(new(store, concepts=("dolly_zoom",), callback_url="http://127.0.0.1:9/hook",
                   keyframes=Keyframes(frame0=GenerationKeyframe(id=done.id),
                                       frame1=ImageKeyframe(url="data:image/png;base64,AAAA"))).id)
    source = store.get(done.id)
    assert source is not None
    upscale = Generation.new(owner=OWNER, dialect="luma", seed=7, kind=Kind.UPSCALE, source_id=done.id,
                             request=source.request.model_copy(update={"resolution": Resolution.P1080}))
    ids.append(store.create(upscale).id)
    generations = [store.get(generation_id) for generation_id in ids]
    assert {g.state.value for g in generations if g} == {"running", "completed", "failed", "cancelled", "queued"}
    return [g for g in generations if g is not None]


def test_luma_and_aiml_objects_are_sent_unchanged_in_every_state(store: JobStore, tmp_path: Path) -> None:
    service = GenerationService(store, LocalFiles(tmp_path / "files"))
    luma_model = route_model(luma.router, "/dream-machine/v1/generations/{generation_id}", "GET")
    aiml_model = route_model(aiml.router, "/v2/video/generations", "GET")
    for generation in every_state(store):
        rendered = luma.render_generation(generation, URLS)
        assert sent_through(luma_model, rendered) == sent_plain(rendered)
        rendered = aiml.render_generation(generation, URLS, service.charged(generation))
        assert sent_through(aiml_model, rendered) == sent_plain(rendered)


def test_fal_result_is_sent_unchanged_and_status_matches_its_schema(store: JobStore, tmp_path: Path) -> None:
    service = GenerationService(store, LocalFiles(tmp_path / "files"))
    result_model = route_model(fal.queue, "/{owner_name}/{alias}/requests/{request_id}", "GET")
    status_schema = TypeAdapter(FalQueueStatus)
    seen_keys: set[str] = set()
    for generation in every_state(store):
        for with_logs in (False, True):
            status = fal.status_body(generation, "http://127.0.0.1:8000", service, with_logs=with_logs)
            assert status_schema.dump_python(status_schema.validate_python(status), mode="json") == status
            seen_keys |= set(status)
        if generation.state.value == "completed":
            rendered = fal.result_body(generation, URLS)
            assert sent_through(result_model, rendered) == sent_plain(rendered)
    assert seen_keys == set(FalQueueStatus.__annotations__), "every optional status key was rendered at least once"


def test_openai_videos_are_sent_unchanged_in_every_state(store: JobStore, tmp_path: Path) -> None:
    service = GenerationService(store, LocalFiles(tmp_path / "files"))
    video_model = route_model(openai.router, "/v1/videos/{video_id}", "GET")
    statuses = set()
    for generation in every_state(store):
        for retention_days in (None, 7.0):
            rendered = openai.render_video(generation, service, retention_days)
            assert sent_through(video_model, rendered) == sent_plain(rendered)
            statuses.add(rendered["status"])
            assert 0 <= rendered["progress"] <= 100
    assert statuses == {"queued", "in_progress", "completed", "failed"}
