"""The files route (Range, ETag) on a real output, and ``dreamreel generate`` without a server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from tests.conftest import DREAMREEL, ServerProcess, run_cli, wait_for

from dreamreel.media.probe import probe_mp4


def test_files_route_serves_ranges_and_etags(shared_server: ServerProcess) -> None:
    base = f"{shared_server.url}/dream-machine/v1/generations"
    gid = httpx.post(base, json={"prompt": "a red ball", "resolution": "540p"}).json()["id"]
    done = wait_for(lambda: (g := httpx.get(f"{base}/{gid}").json())["state"] == "completed" and g)
    url = done["assets"]["video"]

    full = httpx.get(url)
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    etag = full.headers["etag"]
    assert full.content[4:8] == b"ftyp"

    part = httpx.get(url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"
    assert part.content == full.content[100:200]

    assert httpx.get(url, headers={"if-none-match": etag}).status_code == 304
    assert httpx.get(url, headers={"range": f"bytes={len(full.content) + 10}-"}).status_code == 416
    assert httpx.get(f"{shared_server.url}/files/../../etc/passwd").status_code == 404
    assert httpx.get(f"{shared_server.url}/files/generations/nope/video.mp4").status_code == 404


def generate(out: Path, model_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    """``dreamreel generate`` as a user runs it, writing ``out``."""
    return subprocess.run([DREAMREEL, "generate", "a blue square on sand", "--model-dir", str(model_dir), *flags,
                           "-o", str(out)], capture_output=True, text=True, timeout=300)


def test_generate_cli_writes_the_requested_clip(tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "clip.mp4"
    result = generate(out, tiny_model_dir, "--aspect-ratio", "9:16", "--resolution", "540p", "--duration", "5s")
    assert result.returncode == 0, result.stderr
    assert "denoising" in result.stdout and "8/8 steps" in result.stdout
    info = probe_mp4(out)
    assert (info.codec, info.width, info.height, info.frames) == ("h264", 540, 960, 120)
    assert info.duration_s == pytest.approx(5.0, abs=0.05)


def test_generate_cli_writes_an_exact_size_and_length(tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "clip.mp4"
    result = generate(out, tiny_model_dir, "--size", "320x240", "--seconds", "2", "--steps", "1")
    assert result.returncode == 0, result.stderr
    info = probe_mp4(out)
    assert (info.codec, info.width, info.height, info.frames) == ("h264", 320, 240, 48)
    assert info.duration_s == pytest.approx(2.0, abs=0.01)


def test_generate_cli_rejects_bad_input(tmp_path, tiny_model_dir, capsys) -> None:
    # The refusals run the command in this process (run_cli): a subprocess would spend 4 s importing per case.
    assert run_cli(["generate", "x", "--model-dir", str(tiny_model_dir), "--resolution", "999p",
                    "-o", str(tmp_path / "x.mp4")]) == 2
    assert "resolution" in capsys.readouterr().err


def test_generate_cli_starts_from_a_local_image(tmp_path, tiny_model_dir, capsys) -> None:
    from PIL import Image

    start = tmp_path / "start.png"
    Image.new("RGB", (320, 180), (200, 30, 30)).save(start)
    out = tmp_path / "clip.mp4"
    result = subprocess.run(
        [DREAMREEL, "generate", "a red ball", "--model-dir", str(tiny_model_dir), "--resolution", "540p",
         "--start-image", str(start), "--steps", "2", "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert probe_mp4(out).frames == 120

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    capsys.readouterr()
    assert run_cli(["generate", "a red ball", "--model-dir", str(tiny_model_dir), "--end-image", str(garbage),
                    "--steps", "2", "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "keyframes.frame1" in err and "Traceback" not in err, err


def test_generate_cli_reframes_a_local_video(tmp_path, tiny_model_dir, capsys) -> None:
    from tests.unit.test_edit_engine import write_clip

    source = write_clip(tmp_path / "source.mp4", 256, 144, 24)
    out = tmp_path / "tall.mp4"
    result = generate(out, tiny_model_dir, "--reframe", str(source), "--aspect-ratio", "9:16", "--steps", "1")
    assert result.returncode == 0, result.stderr
    info = probe_mp4(out)
    assert (info.width, info.height, info.frames) == (540, 960, 24)  # the source's length, its 540p class

    page = tmp_path / "page.mp4"
    page.write_text("<html>not a video</html>")
    capsys.readouterr()
    assert run_cli(["generate", "x", "--model-dir", str(tiny_model_dir), "--modify", str(page), "--mode", "adhere_1",
                    "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "media.url" in err and "Traceback" not in err, err
