"""Status polls take the fast path (``api/fast_polls.py``) and answer exactly what the full app answers.

Over real HTTP: every dialect's poll of one finished generation, plain (the fast path) and with one query parameter
no route takes (FastAPI ignores it, the fast path refuses it: the full app answers), gives the same status,
content type and body. In process: the middleware answers a qualifying poll without calling the app behind it,
and passes everything else on (errors included, so they keep their one implementation).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ServerProcess, wait_for

from dreamreel.api.app import create_app
from dreamreel.api.dialects import DIALECTS
from dreamreel.api.fast_polls import FastPolls
from dreamreel.config import Settings

LUMA = "/dream-machine/v1"


def _polls(server: ServerProcess) -> dict[str, str]:
    """One finished generation, and the URL each dialect's client polls it at (one record is visible through all
    four)."""
    generation_id = httpx.post(f"{server.url}{LUMA}/generations", json={"prompt": "a red ball", "resolution": "540p"},
                               timeout=30).json()["id"]
    wait_for(lambda: httpx.get(f"{server.url}{LUMA}/generations/{generation_id}", timeout=30)
             .json()["state"] in ("completed", "failed"), timeout=300)
    return {"luma": f"{LUMA}/generations/{generation_id}", "openai": f"/v1/videos/{generation_id}",
            "aiml": f"/v2/video/generations?generation_id={generation_id}:luma/ray-2",
            "fal": f"/fal-ai/luma-dream-machine/requests/{generation_id}/status?logs=1"}


def test_a_fast_poll_answers_what_the_full_app_answers(shared_server: ServerProcess) -> None:
    for dialect, url in _polls(shared_server).items():
        fast = httpx.get(shared_server.url + url, timeout=30)
        full = httpx.get(shared_server.url + url + ("&" if "?" in url else "?") + "full_path=1", timeout=30)
        assert fast.status_code == full.status_code and fast.status_code in (200, 202), (dialect, fast.text)
        assert fast.headers["content-type"] == full.headers["content-type"], dialect
        assert fast.json() == full.json(), dialect
        assert fast.content == full.content, dialect  # same renderer, same bytes


class _Recorder:
    """The app behind the middleware: records what reaches it and answers 418."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _get(app: Any, middleware: FastPolls, method: str, target: str) -> tuple[int, bytes]:
    path, _, query = target.partition("?")
    scope = {"type": "http", "http_version": "1.1", "method": method, "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": query.encode(), "root_path": "", "app": app,
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def in_process(tmp_path: Path) -> tuple[Any, str]:
    app = create_app(Settings(data_dir=tmp_path / "data"), run_dispatcher=False)
    return app, asyncio.run(_create(app))


async def _create(app: Any) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        response = await client.post(f"{LUMA}/generations", json={"prompt": "a red ball"})
        assert response.status_code == 201, response.text
        return response.json()["id"]


def test_the_middleware_answers_qualifying_polls_and_passes_the_rest_on(in_process: tuple[Any, str]) -> None:
    app, generation_id = in_process
    recorder = _Recorder()
    middleware = FastPolls(recorder, routers=[dialect.router for dialect in DIALECTS], keyring=app.state.keyring)
    answered = {
        f"{LUMA}/generations/{generation_id}": 200,
        f"/v1/videos/{generation_id}": 200,
        f"/v2/video/generations?generation_id={generation_id}": 200,
        f"/fal-ai/luma-dream-machine/requests/{generation_id}/status": 202,  # queued: fal's 202
        f"/fal-ai/luma-dream-machine/requests/{generation_id}/status?logs=1": 202,
    }
    for target, status in answered.items():
        code, body = _get(app, middleware, "GET", target)
        assert code == status, (target, body)
        assert generation_id in json.loads(body).get("id", "") + json.loads(body).get("request_id", ""), target
    assert recorder.paths == []

    passed_on = [
        ("GET", f"{LUMA}/generations/{generation_id}?full_path=1"),  # a query the route does not take
        ("GET", f"/v2/video/generations?generation_id={generation_id}&generation_id=x"),  # a repeated one
        ("GET", f"/v2/video/generations?generation_id={'x' * 301}"),  # past the route's length cap
        ("GET", f"{LUMA}/generations/00000000-0000-0000-0000-000000000000"),  # not found: the full app's 404
        ("GET", f"/fal-ai/someone/else/requests/{generation_id}/status"),  # not this server's app: its 404
        ("GET", f"{LUMA}/generations"),  # a list, not a marked route
        ("DELETE", f"{LUMA}/generations/{generation_id}"),
        ("HEAD", f"{LUMA}/generations/{generation_id}"),
    ]
    for method, target in passed_on:
        code, _ = _get(app, middleware, method, target)
        assert code == 418, (method, target)
    assert len(recorder.paths) == len(passed_on)
