"""Retention on SQLite: ``dreamreel retention [--dry-run]`` lists, then deletes, generations finished more than
``retention_days`` ago with their files (and older uploads), keeps everything newer or unfinished and every
ledger entry; a server started with ``DREAMREEL_RETENTION_DAYS`` does the same by itself."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tests.conftest import ServerProcess, run_cli, wait_for

from dreamreel.core.generation import Assets, Generation, State, VideoInfo
from dreamreel.core.request import GenerationRequest
from dreamreel.files import LocalFiles
from dreamreel.store.sqlite import SQLiteStore

DAY = 86_400.0
OWNER = "key-retention0001"
VIDEO = VideoInfo(width=960, height=544, fps=24, frames=121, size_bytes=1000)


def _finished(store: SQLiteStore, files: LocalFiles, *, days_ago: float, state: State = State.COMPLETED) -> str:
    """A generation that finished ``days_ago``, written through the store API, with a 1000-byte video."""
    at = time.time() - days_ago * DAY
    generation = Generation.new(owner=OWNER, dialect="luma", request=GenerationRequest(prompt="an old clip"), seed=1)
    generation = generation.evolve(state=state, created_at=at - 60, updated_at=at, started_at=at - 30,
                                   finished_at=at, assets=Assets(video=f"generations/{generation.id}/video.mp4"),
                                   video_info=VIDEO if state is State.COMPLETED else None)
    store.create(generation)
    (files.generation_dir(generation.id) / "video.mp4").write_bytes(b"\0" * 1000)
    return generation.id


def test_retention_cli_lists_then_deletes_old_generations_files_and_uploads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    store, files = SQLiteStore(data / "dreamreel.db"), LocalFiles(data / "files")
    old = _finished(store, files, days_ago=40)
    old_failed = _finished(store, files, days_ago=31, state=State.FAILED)
    store.delete(old_failed)  # deleted by its owner: the row stays until retention removes it
    recent = _finished(store, files, days_ago=29)
    unfinished = store.create(Generation.new(owner=OWNER, dialect="luma", seed=2,
                                             request=GenerationRequest(prompt="still queued"))).id
    old_upload, new_upload = files.save_upload(OWNER, b"x" * 300), files.save_upload(OWNER, b"y" * 300)
    upload_path = data / "files" / "uploads" / OWNER / old_upload
    os.utime(upload_path, (time.time() - 35 * DAY,) * 2)
    ledger_before = store.ledger(OWNER)
    assert {entry.generation_id for entry in ledger_before} >= {old, old_failed}

    args = ["retention", "--data-dir", str(data), "--days", "30"]
    assert run_cli([*args, "--dry-run"]) == 0
    listing = capsys.readouterr().out
    lines = {line.split()[1]: line.split() for line in listing.splitlines()[1:-1]}
    assert set(lines) == {old, old_failed, old_upload}
    assert lines[old][0] == "generation" and lines[old][2] == OWNER and lines[old][-1] == "1000"
    assert lines[old][3] == time.strftime("%Y-%m-%d", time.gmtime(time.time() - 40 * DAY))
    assert lines[old_upload][0] == "upload" and lines[old_upload][-1] == "300"
    assert "would delete 2 generations and 1 uploads, 2300 bytes" in listing
    assert store.get(old) is not None and upload_path.exists()  # a dry run deletes nothing

    assert run_cli(args) == 0
    assert "deleted 2 generations and 1 uploads, 2300 bytes" in capsys.readouterr().out
    assert store.get(old) is None and store.events(old) == []
    assert store.finished_before(time.time(), 10) == [store.get(recent)]
    assert not (data / "files" / "generations" / old).exists()
    assert not (data / "files" / "generations" / old_failed).exists()
    assert not upload_path.exists() and files.upload_exists(OWNER, new_upload)
    assert store.get(unfinished) is not None and (data / "files" / "generations" / recent / "video.mp4").exists()
    assert store.ledger(OWNER) == ledger_before  # entries outlive what they bill

    assert run_cli(args) == 0 and "deleted 0 generations and 0 uploads" in capsys.readouterr().out
    store.close()


def test_a_server_applies_retention_by_itself(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = tmp_path / "data"
    store, files = SQLiteStore(data / "dreamreel.db"), LocalFiles(data / "files")
    old, recent = _finished(store, files, days_ago=3), _finished(store, files, days_ago=1)
    server = ServerProcess(data, tiny_model_dir, workers=0, extra_env={"DREAMREEL_RETENTION_DAYS": "2"}).start()
    try:
        wait_for(lambda: store.get(old) is None, timeout=10)
        assert not (data / "files" / "generations" / old).exists()
        assert store.get(recent) is not None
    finally:
        server.stop()
        store.close()
