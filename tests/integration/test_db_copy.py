"""Moving up: ``dreamreel db copy`` from a single-machine SQLite store into PostgreSQL keeps every generation,
event and pending callback, with their ids and order; it is idempotent and refuses a non-empty target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.postgres import fresh_schema

from dreamreel.core.failures import FailureCode
from dreamreel.core.generation import Assets, Generation, State, VideoInfo
from dreamreel.core.request import GenerationRequest
from dreamreel.store.postgres import PostgresStore
from dreamreel.store.sqlite import SQLiteStore

DREAMREEL = str(Path(sys.executable).parent / "dreamreel")
HOOK = "http://hooks.example.test/cb"
NOTIFY = frozenset({State.RUNNING, State.COMPLETED, State.FAILED})


def _populate(store: SQLiteStore) -> list[str]:
    """A small server's life: finished, failed, running, queued, deleted; callbacks pending for some."""
    ids = []
    for n in range(5):
        generation = Generation.new(owner="alice", dialect="luma", seed=n, notify_on=NOTIFY,
                                    request=GenerationRequest(prompt=f"clip {n}", callback_url=HOOK))
        ids.append(store.create(generation).id)
    store.claim("w", 30)
    store.complete(ids[0], "w", Assets(video=f"generations/{ids[0]}/video.mp4"), VideoInfo(960, 540, 24, 120, 9))
    store.claim("w", 30)
    store.fail(ids[1], "w", FailureCode.INPUT, "keyframes.frame0: not an image")
    store.claim("w", 30)
    store.add_event(ids[2], "INFO", "Denoising step 3/20")
    store.delete(ids[4])
    return ids


def test_copy_keeps_generations_events_and_callbacks_and_is_idempotent(tmp_path: Path) -> None:
    source = SQLiteStore(tmp_path / "dreamreel.db")
    ids = _populate(source)
    with fresh_schema() as url:
        command = [DREAMREEL, "db", "copy", "--from", f"sqlite:///{tmp_path / 'dreamreel.db'}", "--to", url]
        first = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert "generations: 5 copied, 0 already there" in first.stdout

        target = PostgresStore(url, pool_size=2)
        try:
            for gid in ids[:4]:
                assert target.get(gid) == source.get(gid)
                assert [(e.id, e.message) for e in target.events(gid)] == [
                    (e.id, e.message) for e in source.events(gid)]
            assert target.get(ids[4]) is None  # deleted stays deleted
            assert [g.id for g in target.list("alice", 10, 0)] == [g.id for g in source.list("alice", 10, 0)]
            assert target.queue_position(ids[3]) == 0
            expected = [(d.generation_id, d.snapshot.state) for d in source.claim_deliveries(100, 30)]
            assert [(d.generation_id, d.snapshot.state) for d in target.claim_deliveries(100, 30)] == expected
            assert expected  # the pending callbacks were there to move

            refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert refused.returncode == 2 and "already holds 5 generations" in refused.stderr
            again = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=60)
            assert again.returncode == 0 and "generations: 0 copied, 5 already there" in again.stdout

            newer = target.create(Generation.new(owner="alice", dialect="luma", seed=9,
                                                 request=GenerationRequest(prompt="after the move")))
            assert target.list("alice", 1, 0)[0].id == newer.id  # new ids continue after the copied ones
            assert target.claim("w2", 30).id == ids[3]  # the copied queue still runs first
        finally:
            target.close()
