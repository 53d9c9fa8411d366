"""Metering end to end: a mix of sizes and durations through three dialects, one failed and one cancelled,
and the ledger equals the formula's sum exactly; Luma's ``/credits``, AI/ML's ``meta.usage`` and
``dreamreel usage`` all read that ledger."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from tests.acceptance.test_keys import AIML, FAL, LUMA, create_key
from tests.conftest import DREAMREEL, ServerProcess, wait_for

from dreamreel.core.metering import cost_milli


def test_ledger_matches_the_delivered_clips(tmp_path: Path, tiny_model_dir: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    token = create_key(data_dir, "payer", "--credits", "20")
    server = ServerProcess(data_dir, tiny_model_dir, workers=1).start()
    try:
        api = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        # The cancelled one first, while the worker is busy with nothing yet queued behind it.
        # ray-flash-2 throughout (its fast preset): what a clip costs depends on its size and length alone.
        blocker = api.post(f"{LUMA}/generations", json={"prompt": "a red ball", "model": "ray-flash-2",
                                                         "resolution": "540p"}).json()["id"]
        cancelled = api.post(f"{FAL}/ray-flash-2", json={"prompt": "a blue cube", "resolution": "720p"}).json()
        assert api.put(f"{FAL}/requests/{cancelled['request_id']}/cancel").status_code == 202
        square = api.post(AIML, json={"model": "luma/ray-flash-2", "prompt": "a green star", "resolution": "540p",
                                      "aspect_ratio": "1:1"}).json()["id"]
        tall = api.post(f"{FAL}/ray-flash-2", json={"prompt": "a tall tower", "aspect_ratio": "9:16",
                                              "duration": "9s"}).json()["request_id"]
        failed = api.post(f"{LUMA}/generations", json={
            "prompt": "from a missing image", "model": "ray-flash-2", "resolution": "540p",
            "keyframes": {"frame0": {"type": "image", "url": "http://127.0.0.1:9/missing.png"}},
        }).json()["id"]

        def state(gid: str) -> str:
            return api.get(f"{LUMA}/generations/{gid.split(':')[0]}").json()["state"]

        for gid in (blocker, square, tall, failed):
            wait_for(lambda gid=gid: state(gid) in ("completed", "failed"), timeout=180)
        assert [state(g) for g in (blocker, square, tall, failed)] == ["completed"] * 3 + ["failed"]
        assert state(cancelled["request_id"]) == "failed"  # Luma's word for cancelled

        expected = cost_milli(960, 540, 5) + cost_milli(540, 540, 5) + cost_milli(540, 960, 9)
        assert expected == 1000 + 563 + 1800
        balance = api.get(f"{LUMA}/credits").json()["credit_balance"]
        assert round((20 - balance) * 1000) == expected  # nothing held: the failed and cancelled were released
        usage = api.get(AIML, params={"generation_id": square}).json()["meta"]["usage"]
        assert usage["credits_used"] == 0.563
        ledger = subprocess.run([DREAMREEL, "usage", "--key", "payer", "--data-dir", str(data_dir)],
                                capture_output=True, text=True, check=True).stdout
        assert "charged 3.363 credits; reserved now 0;" in ledger
        assert ledger.count(" charge ") == 3 and ledger.count(" reserve ") == 5 and ledger.count(" release ") == 5
    finally:
        server.stop()
