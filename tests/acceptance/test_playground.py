"""The playground at ``/`` in a real browser (Playwright driving Debian's Chromium) against a live server with the
tiny model: make a clip and watch it form, play it, extend it, make one from an uploaded image, see a bad
request explained, find them all in the gallery; at desktop and at phone width. A server without a worker and
with API keys: the key is asked for once and kept, and a job waits as "queued".

``UPDATE_SCREENSHOTS=1`` also writes docs/playground-desktop.jpg and docs/playground-phone.jpg (never in CI, so
the tree stays clean).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright
from tests.conftest import ServerProcess, models_config_env

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
SLOW_STEPS = 250
"""``ray-2``'s steps here: a clip long enough to show several progress values and a preview (previews are
spaced by only 1x their own cost here, ``DREAMREEL_PREVIEW_BUDGET``, so every clip of the module gets one)."""
FAST_STEPS = 4
"""``ray-flash-2``'s (its ``fast`` preset): the chained clips, which only need to finish."""
KEY = "playground-key"

# Every GET of a generation the page makes, as the page received it (what its progress bar may show).
RECORD_POLLS = """
window.__polls = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await realFetch(...args);
  const url = String(args[0]);
  if (/\\/dream-machine\\/v1\\/generations\\/[^/?]+$/.test(url) && response.ok) {
    response.clone().json().then((g) => window.__polls.push({id: g.id, state: g.state, progress: g.progress}));
  }
  return response;
};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("playground")
    env = models_config_env(root, f'[models.ray-2]\nfamily = "ltx-condition"\npath = "{tiny_model_dir}"\n'
                                  f'steps = {SLOW_STEPS}\n[models.ray-2.speeds.fast]\nsteps = {FAST_STEPS}\n')
    proc = ServerProcess(root / "data", tiny_model_dir, extra_env={
        **env, "DREAMREEL_PREVIEW_INTERVAL_SECONDS": "0.2", "DREAMREEL_PREVIEW_BUDGET": "1",
        "DREAMREEL_PROGRESS_INTERVAL_SECONDS": "0.1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--autoplay-policy=no-user-gesture-required"])
        yield launched
        launched.close()


def open_page(browser: Browser, url: str, width: int, height: int) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # Chromium logs every 4xx answer as a console error; the answers the tests provoke are checked where made.
    page.on("console", lambda message: message.type == "error"
            and not message.text.startswith("Failed to load resource") and problems.append(message.text))
    page.add_init_script(RECORD_POLLS)
    page.goto(url)
    return page, problems


def wait_done(page: Page, not_id: str | None = None, timeout_s: float = 60) -> str:
    """The id of the generation on show once it is completed (another than ``not_id``)."""
    page.wait_for_function(
        "(old) => { const c = document.querySelector('#current');"
        " return !c.hidden && c.dataset.state === 'completed' && c.dataset.id !== old; }",
        arg=not_id or "", timeout=timeout_s * 1000)
    return page.get_attribute("#current", "data-id")


def playing_duration(page: Page) -> float:
    """The finished clip's length once the player has it decoded and playing."""
    page.wait_for_function("() => { const v = document.querySelector('#player');"
                           " return !v.hidden && v.readyState >= 2 && v.duration > 0 && v.currentTime > 0; }",
                           timeout=30_000)
    return page.eval_on_selector("#player", "v => v.duration")


@pytest.mark.parametrize(("width", "height"), [(1280, 860), (390, 844)], ids=["desktop", "phone"])
def test_make_watch_chain_and_browse(browser: Browser, server: ServerProcess, tmp_path: Path, width: int,
                                     height: int) -> None:
    page, problems = open_page(browser, server.url, width, height)
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_hidden("#key-form")  # a keyless server asks for none
    assert page.eval_on_selector("#model", "s => [...s.options].map(o => o.value)") == ["ray-2", "ray-flash-2"]

    # Make a clip and watch it form: the bar takes the API's own progress values, a preview shows up.
    page.fill("#prompt", "a red ball bouncing on green grass")
    page.click("#submit")
    seen: list[tuple[str, float]] = []
    preview_seen = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state, value, preview = page.evaluate(
            "() => [document.querySelector('#current').dataset.state, document.querySelector('#progress').value,"
            " !document.querySelector('#preview').hidden && document.querySelector('#preview').src]")
        seen.append((state, value))
        preview_seen = preview_seen or bool(preview and "/files/" in preview)
        if state in ("completed", "failed"):
            break
        time.sleep(0.02)
    first = page.get_attribute("#current", "data-id")
    assert seen[-1] == ("completed", 1), seen[-1]
    received = {poll["progress"] for poll in page.evaluate("() => window.__polls") if poll["id"] == first}
    shown = {value for state, value in seen if state == "dreaming" and 0 < value < 1}
    assert len(shown) >= 3, seen
    assert shown <= received, (shown, received)
    assert preview_seen, seen[::20]
    first_duration = playing_duration(page)

    # Extend it with the fast model: a second clip, longer than the first.
    page.select_option("#model", "ray-flash-2")
    page.click("#actions [data-action=extend]")
    extended = wait_done(page, not_id=first)
    assert playing_duration(page) > first_duration + 1

    # An image-to-video clip from an uploaded image.
    image = tmp_path / "start.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (90, 1, 3))).save(image)
    page.set_input_files("#frame0 input[type=file]", str(image))
    page.wait_for_function("() => (document.querySelector('#frame0').dataset.url || '').startsWith('upload:')")
    page.fill("#prompt", "the gradient slowly turns")
    page.click("#submit")
    from_image = wait_done(page, not_id=extended)
    assert '"frame0":{"type":"image","url":"upload:' in page.text_content("#snippet")  # this request, as curl

    # A bad request: the message in plain words, the field marked.
    page.click("#frame0 .clear")
    page.fill("#prompt", "")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "prompt" in page.text_content("#error")
    assert page.get_attribute("#error", "data-field") == "prompt"
    assert page.eval_on_selector("#prompt", "e => e.classList.contains('invalid')")

    # All three in the gallery, newest first.
    page.wait_for_function("(ids) => ids.every(id => document.querySelector(`#gallery [data-id='${id}']`))",
                           arg=[first, extended, from_image])
    order = page.eval_on_selector_all("#gallery [data-id]", "items => items.map(i => i.dataset.id)")
    assert order.index(from_image) < order.index(extended) < order.index(first)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")  # nothing overflows
    assert problems == []

    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.click(f"#gallery [data-id='{extended}']")
        wait_done(page)
        page.screenshot(path=str(DOCS / f"playground-{'phone' if width < 600 else 'desktop'}.jpg"), full_page=True,
                        type="jpeg", quality=80)
    page.context.close()


def test_a_key_is_asked_once_and_a_job_without_a_worker_waits_as_queued(
        browser: Browser, tmp_path: Path, tiny_model_dir: Path) -> None:
    server = ServerProcess(tmp_path / "data", tiny_model_dir, workers=0,
                           extra_env={"DREAMREEL_API_KEYS": f'["{KEY}"]'}).start()
    try:
        page, problems = open_page(browser, server.url, 1280, 860)
        page.wait_for_selector("#key-form:not([hidden])")
        assert "API key" in page.text_content("#error")
        page.fill("#api-key", KEY)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("body[data-ready=true]")
        page.reload()  # kept in the browser: no second ask
        page.wait_for_selector("body[data-ready=true]")
        assert page.is_hidden("#error")
        page.fill("#prompt", "a boat on a calm lake")
        page.click("#submit")
        page.wait_for_selector("#current[data-state=queued]")
        page.wait_for_function("() => /Queued: next in line/.test(document.querySelector('#status').textContent)")
        time.sleep(1)  # still queued, still polling, nothing broken
        assert page.get_attribute("#current", "data-state") == "queued"
        assert problems == []
        first = page.get_attribute("#current", "data-id")
        luma = f"{server.url}/dream-machine/v1/generations"
        headers = {"Authorization": f"Bearer {KEY}"}
        second = httpx.post(luma, json={"prompt": "a second boat"}, headers=headers).json()
        assert [httpx.get(f"{luma}/{g}", headers=headers).json()["queue_position"] for g in (first, second["id"])] \
            == [0, 1]
    finally:
        server.stop()
