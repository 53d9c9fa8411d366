"""Private files: asset URLs are signed, expiring, on the configured public URL; anything else is a 404.

One generation on a server whose public URL (``localhost``) differs from its bind address (``127.0.0.1``),
a second API node on the same data directory (so the same server secret, and the same public URL, as every
node behind one name has), and a webhook receiver (either node's dispatcher may deliver the callback).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.acceptance.receiver import Receiver
from tests.conftest import ServerProcess, wait_for

from dreamreel.api.urls import FileUrls
from dreamreel.config import Settings

EVIL = {"host": "evil.example"}


@dataclass
class Setup:
    node: ServerProcess
    other_node: ServerProcess
    public_url: str
    generation: dict
    callback: dict


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp("private") / "data"
    node = ServerProcess(data_dir, tiny_model_dir)
    public_url = f"http://localhost:{node.port}"
    node.env["DREAMREEL_PUBLIC_URL"] = public_url
    other_node = ServerProcess(data_dir, tiny_model_dir, workers=0, extra_env={"DREAMREEL_PUBLIC_URL": public_url})
    receiver = Receiver()
    try:
        node.start()
        created = httpx.post(f"{node.url}/dream-machine/v1/generations", headers=EVIL, json={
            "prompt": "a red ball", "resolution": "540p", "callback_url": receiver.url}).json()
        other_node.start()  # while the first node's worker renders
        base = f"{node.url}/dream-machine/v1/generations/{created['id']}"
        done = wait_for(lambda: (g := httpx.get(base, headers=EVIL).json())["state"] == "completed" and g)
        callback = wait_for(lambda: next((b for b in receiver.bodies if b["state"] == "completed"), None), 30)
        yield Setup(node, other_node, public_url, done, callback)
    finally:
        receiver.close()
        if other_node.proc is not None:
            other_node.proc.terminate()  # both nodes shut down at once
        node.stop()
        other_node.stop()


def _signed(url: str) -> dict[str, str]:
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert set(query) == {"exp", "sig"}, url
    return query


def _on(node: ServerProcess, url: str) -> str:
    """The same path and query, on ``node``'s own address."""
    parts = urlsplit(url)
    return f"{node.url}{parts.path}?{parts.query}"


def test_asset_urls_are_signed_on_the_public_url_and_not_the_host_header(setup: Setup) -> None:
    node, gid = setup.node, setup.generation["id"]
    fal = httpx.get(f"{node.url}/fal-ai/luma-dream-machine/requests/{gid}", headers=EVIL).json()
    aiml = httpx.get(f"{node.url}/v2/video/generations", params={"generation_id": gid}, headers=EVIL).json()
    urls = [setup.generation["assets"]["video"], setup.generation["assets"]["image"], fal["video"]["url"],
            aiml["video"]["url"], setup.callback["assets"]["video"]]
    for url in urls:
        assert url.startswith(f"{setup.public_url}/files/generations/{gid}/"), url
        assert "evil" not in url
        exp = int(_signed(url)["exp"])
        ttl = Settings().file_url_ttl_seconds
        assert exp % 3600 == 0 and ttl - 120 <= exp - time.time() <= ttl + 3600  # rounded up to the hour
    # Every rendering of one file with one expiry is the same string (clients cache by URL).
    videos = [urls[0], *urls[2:]]
    assert len(set(videos)) == len({_signed(url)["exp"] for url in videos})


def test_the_signed_url_downloads_with_no_headers_on_any_node(setup: Setup) -> None:
    url = setup.generation["assets"]["video"]
    with httpx.Client() as client:  # nothing but httpx's own defaults: no Authorization, no cookies
        asked_at = time.time()
        full = client.get(url)
        assert full.status_code == 200 and full.content[4:8] == b"ftyp"
        cache = full.headers["cache-control"]
        assert cache.startswith("private, max-age=") and "public" not in cache and "immutable" not in cache
        assert 0 < int(cache.rsplit("=", 1)[1]) <= int(_signed(url)["exp"]) - asked_at + 1
        head = client.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(full.content))
        part = client.get(url, headers={"range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == full.content[10:20]
        # A second API node sharing the data directory (so the server secret) accepts what the first signed.
        elsewhere = client.get(_on(setup.other_node, url))
        assert elsewhere.status_code == 200 and elsewhere.content == full.content


def test_unsigned_tampered_and_expired_urls_are_refused(setup: Setup) -> None:
    node, url = setup.node, setup.generation["assets"]["video"]
    path, query = urlsplit(url).path, _signed(url)
    key = path.removeprefix("/files/")
    signer = FileUrls.from_settings(Settings(data_dir=node.data_dir, public_url=node.url))
    expired = signer.url(key, exp=int(time.time()) - 1)
    still_valid = signer.url(key, exp=int(time.time()) + 120)
    sig = query["sig"]
    refused = {
        "unsigned": f"{node.url}{path}",
        "no sig": f"{node.url}{path}?exp={query['exp']}",
        "tampered sig": f"{node.url}{path}?exp={query['exp']}&sig={sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",
        "exp moved later": f"{node.url}{path}?exp={int(query['exp']) + 3600}&sig={sig}",
        "another file": f"{node.url}{path.replace('video.mp4', 'poster.jpg')}?exp={query['exp']}&sig={sig}",
        "expired": expired,
        "huge exp": f"{node.url}{path}?exp={'9' * 5000}&sig={sig}",
    }
    for name, bad in refused.items():
        assert httpx.get(bad).status_code == 404, name
        assert httpx.head(bad).status_code == 404, name
    assert httpx.get(still_valid).status_code == 200  # the crafted URLs are signed with the real key
