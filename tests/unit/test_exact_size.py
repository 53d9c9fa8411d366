"""An explicit size and any whole length are delivered exactly, through every path that writes a clip.

The real pieces run in-process on the tiny model: a SQLite store and the service (submission checks),
``engine.render`` and ``media.encode.encode_clip`` (what a worker runs), the worker's keyframe resolver for an
extension, ``worker.reencode`` for an upscale; plus ``dreamreel generate --size --seconds`` as a subprocess.
Every MP4 is read back with PyAV (``media.probe``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from tests.conftest import run_cli

from dreamreel.core.errors import InvalidRequest, NotSupported
from dreamreel.core.generation import Assets, Generation, VideoInfo
from dreamreel.core.jobstore import JobStore
from dreamreel.core.request import GenerationKeyframe, GenerationRequest, Keyframes, Resolution, nearest_format
from dreamreel.core.service import GenerationService
from dreamreel.engine.backends.ltx import LTXConditionBackend
from dreamreel.engine.render import render
from dreamreel.files import LocalFiles
from dreamreel.media.encode import encode_clip
from dreamreel.media.probe import probe_mp4
from dreamreel.store import open_store
from dreamreel.worker.inputs import InputResolver
from dreamreel.worker.reencode import upscale_clip

OWNER, WORKER = "local", "w1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield store
    store.close()


def sized(prompt: str, size: tuple[int, int], seconds: int, **fields) -> GenerationRequest:
    """A request as a dialect that takes an exact size builds it: its nearest Ray format beside the size."""
    aspect, resolution = nearest_format(*size)
    return GenerationRequest(prompt=prompt, aspect_ratio=aspect, resolution=resolution, size=size,
                             duration_s=seconds, **fields)


def run_job(store: JobStore, files: LocalFiles, backend: LTXConditionBackend) -> Generation:
    """Claim the next job and do what a worker does with it: render, encode with its poster, complete."""
    job = store.claim(WORKER, 60.0)
    assert job is not None
    folder = files.generation_dir(job.id)
    clip = render(backend, job.request, seed=job.seed, sources=InputResolver(store, files, job.owner),
                  on_step=lambda done, total: None, should_cancel=lambda: False, steps=1)
    written = encode_clip(clip, folder / "video.mp4", folder / "poster.jpg")
    video = written.video
    assert written.poster is not None
    store.complete(job.id, WORKER, Assets(video=files.key_for(video.path), image=files.key_for(written.poster)),
                   VideoInfo(video.width, video.height, video.fps, video.frames, video.size_bytes))
    done = store.get(job.id)
    assert done is not None and done.state.value == "completed"
    return done


def delivered(files: LocalFiles, generation: Generation) -> tuple[int, int, int, tuple[int, int]]:
    """(width, height, frames) of the MP4 as read back, and the poster's size."""
    info = probe_mp4(files.path_for(generation.assets.video))
    with Image.open(files.path_for(generation.assets.image)) as poster:
        return info.width, info.height, info.frames, poster.size


def test_explicit_size_is_rendered_extended_and_upscaled_exactly(
    store: JobStore, tmp_path: Path, tiny_model_dir: Path,
) -> None:
    files = LocalFiles(tmp_path / "files")
    service = GenerationService(store, files)
    backend = LTXConditionBackend(tiny_model_dir)

    # 5:3 is no Ray aspect (its nearest is 16:9): delivered as asked, rendered at its own aspect
    service.submit(sized("a red ball", (240, 144), 1), owner=OWNER, dialect="openai")
    source = run_job(store, files, backend)
    assert delivered(files, source) == (240, 144, 24, (240, 144))

    # an extension at another explicit size: the source re-encoded at it, then its own 2 s
    extend = sized("on", (144, 256), 2, keyframes=Keyframes(frame0=GenerationKeyframe(id=source.id)))
    service.submit(extend, owner=OWNER, dialect="openai")
    extended = run_job(store, files, backend)
    assert delivered(files, extended) == (144, 256, 24 + 48, (144, 256))

    upscale = service.upscale(extended.id, resolution=Resolution.P720, owner=OWNER, dialect="luma",
                              status_words={})
    assert upscale.request.output_size == (720, 1280)  # the explicit size's aspect at the new short side
    job = store.claim(WORKER, 60.0)
    assert job is not None and job.id == upscale.id
    folder = files.generation_dir(job.id)
    clip = upscale_clip(job, store, files, video_path=folder / "video.mp4", poster_path=folder / "poster.jpg",
                        on_progress=lambda done, total: None, should_cancel=lambda: False)
    assert (clip.video.width, clip.video.height, clip.video.frames) == (720, 1280, 72)
    info = probe_mp4(clip.video.path)
    assert (info.width, info.height, info.frames) == (720, 1280, 72)
    with Image.open(clip.poster) as poster:
        assert poster.size == (720, 1280)


def test_extension_length_and_upscale_size_are_checked_at_submission(store: JobStore, tmp_path: Path) -> None:
    """The stitched clip is the source's length plus ``duration_s``, capped at 30 s; an upscale whose scaled
    explicit size would pass the long-side bound is refused before it is queued."""
    files = LocalFiles(tmp_path / "files")
    service = GenerationService(store, files)
    source = service.submit(sized("x", (1024, 256), 20), owner=OWNER, dialect="openai")
    job = store.claim(WORKER, 60.0)
    store.complete(job.id, WORKER, Assets(video=f"generations/{job.id}/video.mp4"),
                   VideoInfo(1024, 256, 24, 20 * 24, 1000))
    frame0 = Keyframes(frame0=GenerationKeyframe(id=source.id))
    service.submit(sized("on", (256, 256), 10, keyframes=frame0), owner=OWNER, dialect="openai")  # 30 s
    with pytest.raises(InvalidRequest, match="31 s"):
        service.submit(sized("on", (256, 256), 11, keyframes=frame0), owner=OWNER, dialect="openai")
    assert service.upscale(source.id, resolution=Resolution.P720, owner=OWNER, dialect="luma",
                           status_words={}).request.output_size == (2880, 720)
    with pytest.raises(NotSupported, match="3840"):  # 4:1 at 1080p would be 4320 wide
        service.upscale(source.id, resolution=Resolution.P1080, owner=OWNER, dialect="luma", status_words={})


def test_generate_cli_refuses_a_size_beside_a_ray_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--resolution", "720p"], ["--aspect-ratio", "4:3"]):
        assert run_cli(["generate", "x", "--size", "320x240", *extra, "-o", str(tmp_path / "x.mp4")]) == 2
        assert "--size names the exact size" in capsys.readouterr().err
    assert run_cli(["generate", "x", "--size", "320x241", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "even" in capsys.readouterr().err
    assert run_cli(["generate", "x", "--seconds", "21", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "duration_s" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
