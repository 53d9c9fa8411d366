"""Reading an edit's source video (``media/video_source.py``) from real files written here with PyAV: MP4 and MOV
(H.264), WebM (VP8, VP9); what is refused (not a video, corrupt, a codec outside the list, over 4k or too many
frames: from the header, before decoding); and frames sampled evenly, upright, at exactly the size asked.

Every clip's frame ``i`` is a flat grey of level ``LEVEL0 + LEVEL_STEP * i`` with a white top-left block, so a
sampled frame says which source frame it is (:func:`frame_index`) and which way up it is.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import pytest
from PIL import Image

from dreamreel.core.edits import SourceFacts
from dreamreel.media.video_source import (
    MAX_SOURCE_FRAMES,
    SNIFF_BYTES,
    VideoSourceError,
    VideoTooLarge,
    _nearest_frames,
    _opened,
    iter_sampled_frames,
    read_facts,
    sample_frames,
    sniff_container,
)

LEVEL0, LEVEL_STEP = 10, 9


def write_clip(
    target: str | Path | BinaryIO, fmt: str = "mp4", codec: str = "libx264", *, width: int = 64, height: int = 48,
    frames: int = 24, fps: int = 24, rotation: int | None = None, options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
) -> None:
    """A clip whose frame ``i`` is grey ``LEVEL0 + LEVEL_STEP * i`` (mod 256) with a white top-left quarter block."""
    with av.open(target, "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            pixels = np.full((height, width, 3), (LEVEL0 + LEVEL_STEP * index) % 256, np.uint8)
            pixels[: height // 4, : width // 4] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))


def clip_bytes(fmt: str = "mp4", codec: str = "libx264", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    write_clip(buffer, fmt, codec, **kwargs)  # type: ignore[arg-type]
    return buffer.getvalue()


def frame_index(frame: np.ndarray) -> int:
    """Which source frame a sampled frame is, from the grey of its bottom-right quarter."""
    height, width = frame.shape[:2]
    level = frame[height // 2 :, width // 2 :].mean()
    return round((level - LEVEL0) / LEVEL_STEP)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


# --- sniffing -------------------------------------------------------------------------------------------------


CONTAINERS = [("mp4", "libx264", "mp4"), ("mov", "libx264", "mov"), ("webm", "libvpx-vp9", "webm"),
              ("webm", "libvpx", "webm")]


@pytest.mark.parametrize(("fmt", "codec", "kind"), CONTAINERS)
def test_each_container_is_sniffed_and_read_from_its_header(tmp_path: Path, fmt: str, codec: str, kind: str) -> None:
    path = tmp_path / "clip.bin"  # no extension: nothing but the bytes says what it is
    write_clip(path, fmt, codec)
    assert sniff_container(path.read_bytes()[:SNIFF_BYTES]) == kind
    assert read_facts(path) == SourceFacts(width=64, height=48, fps=24.0, frames=24)
    first, last = sample_frames(path, 2, 64, 48)
    assert (frame_index(first), frame_index(last)) == (0, 23)


@pytest.mark.parametrize(
    "head",
    [_png()[:SNIFF_BYTES], b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
     b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", b"RIFF\x00\x00\x00\x00AVI ", b"", b"\x1a\x45\xdf", b"GIF89a"],
)
def test_images_and_other_files_are_not_sniffed_as_video(head: bytes) -> None:
    assert sniff_container(head) is None


def test_a_png_named_mp4_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(_png())
    with pytest.raises(VideoSourceError, match="not an MP4, MOV or WebM"):
        read_facts(path)


# --- refusals -------------------------------------------------------------------------------------------------


def test_corrupt_and_truncated_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(range(256)) * 40)
    whole = clip_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])  # the moov box (the index) is written last: cut off
    for path in (garbage, truncated):
        with pytest.raises(VideoSourceError) as info:
            read_facts(path)
        assert str(tmp_path) not in str(info.value)  # FFmpeg's reason, not our file's path
    with pytest.raises(VideoSourceError, match="cannot be read"):
        read_facts(tmp_path / "absent.mp4")


def test_a_file_without_a_video_stream_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        for _ in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoSourceError, match="no video stream"):
        read_facts(path)


def test_codecs_outside_the_allow_list_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "motion-jpeg.mov"
    write_clip(path, "mov", "mjpeg", pix_fmt="yuvj420p", frames=2)
    with pytest.raises(VideoSourceError, match="coded as mjpeg; accepted codecs are av1, h264"):
        read_facts(path)


def _scramble_media_data(path: Path) -> None:
    """Overwrite every coded frame (the ``mdat`` payload) with noise: only the header still makes sense."""
    data = bytearray(path.read_bytes())
    at = data.index(b"mdat")
    (size,) = struct.unpack(">I", data[at - 4 : at])
    start, end = at + 4, at - 4 + size
    data[start:end] = np.random.default_rng(0).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("width", "height"), [(4112, 16), (3856, 2176)])
def test_frames_over_4k_are_refused_from_the_header(tmp_path: Path, width: int, height: int) -> None:
    """Over the side cap, and over the pixel cap with both sides under it."""
    path = tmp_path / "huge.mp4"
    write_clip(path, width=width, height=height, frames=1)
    with pytest.raises(VideoTooLarge, match=f"the video is {width}x{height}; the largest accepted is 4k"):
        read_facts(path)


def test_the_size_refusal_needs_no_decodable_frame(tmp_path: Path) -> None:
    """The coded frame is noise: a refusal that names the size came from the header, not from a decode."""
    path = tmp_path / "wide.mp4"
    write_clip(path, width=4112, height=16, frames=2)
    _scramble_media_data(path)
    with pytest.raises(VideoTooLarge, match="the video is 4112x16"):
        read_facts(path)


def test_more_frames_than_any_edit_reads_are_refused_from_the_header(tmp_path: Path) -> None:
    too_long, longest = tmp_path / "too-long.mp4", tmp_path / "longest.mp4"
    write_clip(too_long, codec="mpeg4", width=16, height=16, frames=MAX_SOURCE_FRAMES + 1, fps=120)
    write_clip(longest, codec="mpeg4", width=16, height=16, frames=MAX_SOURCE_FRAMES, fps=120)
    with pytest.raises(VideoTooLarge, match=f"has {MAX_SOURCE_FRAMES + 1} frames \\(30.0 s\\); at most 3600"):
        read_facts(too_long)
    assert read_facts(longest).frames == MAX_SOURCE_FRAMES


# --- facts ----------------------------------------------------------------------------------------------------


def test_a_rotated_clip_is_described_and_sampled_upright(tmp_path: Path) -> None:
    """Stored 64x48 with a 90° (counter-clockwise) display rotation, as a phone stores a portrait clip."""
    path = tmp_path / "portrait.mp4"
    write_clip(path, rotation=90, frames=4)
    assert read_facts(path) == SourceFacts(width=48, height=64, fps=24.0, frames=4)
    (frame,) = sample_frames(path, 1, 48, 64)
    assert frame.shape == (64, 48, 3)
    assert frame[-4:, :4].mean() > 240 and frame[:4, :4].mean() < 40  # the stored top-left block, turned


def test_a_live_recorded_webm_without_a_duration_has_its_frames_counted(tmp_path: Path) -> None:
    path = tmp_path / "recording.webm"
    write_clip(path, "webm", "libvpx", frames=12, options={"live": "1"})  # as a browser's MediaRecorder writes
    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.video[0].frames == 0
    assert read_facts(path) == SourceFacts(width=64, height=48, fps=24.0, frames=12)


# --- sampling -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    write_clip(path)
    return path


@pytest.mark.parametrize(
    ("count", "indices"),
    [(1, [0]), (2, [0, 23]), (4, [0, 8, 15, 23]), (24, list(range(24)))],
)
def test_samples_are_evenly_spaced_from_the_first_frame_to_the_last(clip: Path, count: int,
                                                                     indices: list[int]) -> None:
    frames = sample_frames(clip, count, 64, 48)
    assert frames.shape == (count, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_index(frame) for frame in frames] == indices


def test_more_samples_than_frames_repeat_frames_in_order(clip: Path) -> None:
    indices = [frame_index(frame) for frame in iter_sampled_frames(clip, 47, 64, 48)]
    assert len(indices) == 47 and indices[0] == 0 and indices[-1] == 23
    assert sorted(indices) == indices and set(indices) == set(range(24))


@pytest.mark.parametrize(("width", "height"), [(40, 30), (200, 150), (30, 40)])
def test_samples_have_exactly_the_asked_size(clip: Path, width: int, height: int) -> None:
    frames = sample_frames(clip, 3, width, height)
    assert frames.shape == (3, height, width, 3)
    assert [frame_index(frame) for frame in frames] == [0, 12, 23]  # 11.5 is a tie: the later frame
    assert frames[0, : height // 8, : width // 8].mean() > 240  # the white block stays top-left


def test_a_file_object_reads_like_a_path(clip: Path) -> None:
    buffer = io.BytesIO(clip.read_bytes())
    assert read_facts(buffer) == read_facts(clip)
    assert buffer.tell() == 0
    assert [frame_index(frame) for frame in sample_frames(buffer, 4, 32, 24)] == [0, 8, 15, 23]


def _with_stated_duration(data: bytes, milliseconds: float) -> bytes:
    """A WebM whose Segment Info claims another duration (EBML ``Duration``, an 8-byte float)."""
    at = data.index(b"\x44\x89\x88") + 3
    return data[:at] + struct.pack(">d", milliseconds) + data[at + 8 :]


def test_a_header_stating_less_than_the_stream_holds_is_sampled_to_its_stated_end(tmp_path: Path) -> None:
    """The facts (and so the edit's length) say 0.5 s: sampling ends there and decodes no further."""
    path = tmp_path / "short-header.webm"
    path.write_bytes(_with_stated_duration(clip_bytes("webm", "libvpx"), 500.0))
    assert read_facts(path).frames == 12
    assert [frame_index(frame) for frame in sample_frames(path, 2, 64, 48)] == [0, 11]


def test_a_header_stating_more_than_the_stream_holds_ends_on_its_last_frame(tmp_path: Path) -> None:
    path = tmp_path / "long-header.webm"
    path.write_bytes(_with_stated_duration(clip_bytes("webm", "libvpx"), 5000.0))
    assert read_facts(path).frames == 120
    assert [frame_index(frame) for frame in sample_frames(path, 3, 64, 48)] == [0, 23, 23]


def test_a_stream_whose_timestamps_never_reach_the_stated_end_is_stopped(clip: Path) -> None:
    """The decode cap: frames past it (the header's count plus a margin) while a target is still ahead."""
    with _opened(clip) as (container, stream), pytest.raises(VideoSourceError, match="timestamps are unusable"):
        list(_nearest_frames(container.decode(stream), [0.0, 60.0], 24.0, 10, (8, 8)))
