"""media/: real MP4s are encoded into tmp_path and read back through PyAV (no mocks)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dreamreel.media.encode import KEYFRAME_INTERVAL_S, EncodedVideo, encode_frames, encode_mp4, write_poster
from dreamreel.media.probe import probe_mp4, read_frames
from dreamreel.media.resample import iter_output_frames, temporal_positions

NATIVE_FRAMES, NATIVE_H, NATIVE_W = 41, 64, 112


def synthetic_clip(frames: int = NATIVE_FRAMES, height: int = NATIVE_H, width: int = NATIVE_W) -> np.ndarray:
    """A colourful gradient whose blue channel pulses, plus a yellow box moving left to right.

    Colourful so a wrong YUV matrix/range would show up as a large difference; moving so the
    first and last frames clearly differ and we can tell which one we are looking at.
    """
    t = np.arange(frames, dtype=np.float32)[:, None, None]
    y = np.arange(height, dtype=np.float32)[None, :, None]
    x = np.arange(width, dtype=np.float32)[None, None, :]
    zeros = np.zeros((frames, height, width), dtype=np.float32)
    red = zeros + x * 255 / (width - 1)
    green = zeros + y * 255 / (height - 1)
    blue = zeros + 128 + 100 * np.sin(t / 6.0)
    clip = np.stack([red, green, blue], axis=-1).round().clip(0, 255).astype(np.uint8)
    box_w, box_h = width // 7, height // 3
    for i in range(frames):
        x0 = round(i * (width - box_w) / max(frames - 1, 1))
        clip[i, height // 3 : height // 3 + box_h, x0 : x0 + box_w] = (255, 255, 0)
    return clip


def upscale(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def top_level_boxes(data: bytes) -> list[str]:
    """ISO-BMFF top-level box types in file order (handles 64-bit sizes and size 0 = to EOF)."""
    boxes: list[str] = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


@dataclass(frozen=True)
class Encoded:
    native: np.ndarray
    result: EncodedVideo
    progress: list[tuple[int, int]]


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    """960x540 at 24 fps, 120 frames (5.0 s) from the 41-frame 112x64 native clip."""
    native = synthetic_clip()
    progress: list[tuple[int, int]] = []
    out = tmp_path_factory.mktemp("landscape") / "clip.mp4"
    result = encode_mp4(
        native,
        out,
        width=960,
        height=540,
        fps=24,
        output_frames=120,
        on_frame=lambda done, total: progress.append((done, total)),
    )
    return Encoded(native, result, progress)


@pytest.fixture(scope="module")
def landscape_frames(landscape: Encoded) -> np.ndarray:
    return read_frames(landscape.result.path)


# --- temporal resampling -------------------------------------------------------------


def test_temporal_positions_preserve_endpoints() -> None:
    positions = temporal_positions(41, 120)
    assert len(positions) == 120
    assert positions[0] == (0, 1, 0.0)
    assert positions[-1] == (40, 40, 0.0)
    absolute = [i0 + w for i0, _, w in positions]
    assert absolute == sorted(absolute)
    assert all(0.0 <= w < 1.0 and i1 in (i0, i0 + 1) for i0, i1, w in positions)


@pytest.mark.parametrize(("native", "output"), [(41, 41), (41, 216), (9, 5), (2, 2), (1, 10)])
def test_temporal_positions_endpoints_any_ratio(native: int, output: int) -> None:
    positions = temporal_positions(native, output)
    assert len(positions) == output
    assert positions[0][0] == 0 and positions[0][2] == 0.0
    assert positions[-1] == (native - 1, native - 1, 0.0)
    assert all(0 <= i0 <= i1 < native for i0, i1, _ in positions)


def test_temporal_positions_identity_when_counts_match() -> None:
    assert [(i0, w) for i0, _, w in temporal_positions(17, 17)] == [(i, 0.0) for i in range(17)]


def test_temporal_positions_rejects_empty() -> None:
    with pytest.raises(ValueError):
        temporal_positions(0, 10)
    with pytest.raises(ValueError):
        temporal_positions(10, 0)


def test_iter_output_frames_endpoints_exact_and_blends_between() -> None:
    native = synthetic_clip(frames=5, height=8, width=14)
    frames = list(iter_output_frames(native, 9))  # every other output frame is a 50/50 blend
    assert len(frames) == 9
    assert all(f.shape == native.shape[1:] and f.dtype == np.uint8 for f in frames)
    np.testing.assert_array_equal(frames[0], native[0])
    np.testing.assert_array_equal(frames[-1], native[-1])
    np.testing.assert_array_equal(frames[2], native[1])
    expected_mid = np.rint((native[0].astype(np.float32) + native[1]) / 2)
    np.testing.assert_allclose(frames[1], expected_mid, atol=1)


def test_iter_output_frames_rejects_bad_input_eagerly() -> None:
    with pytest.raises(ValueError):
        iter_output_frames(np.zeros((4, 8, 8), dtype=np.uint8), 10)
    with pytest.raises(ValueError):
        iter_output_frames(np.zeros((4, 8, 8, 3), dtype=np.float32), 10)


# --- encoding ------------------------------------------------------------------------


def test_encoded_stream_matches_request(landscape: Encoded) -> None:
    info = probe_mp4(landscape.result.path)
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert (info.width, info.height) == (960, 540)
    assert info.fps == pytest.approx(24.0)
    assert info.frames == 120
    assert info.duration_s == pytest.approx(5.0, abs=0.05)

    result = landscape.result
    assert (result.width, result.height, result.fps, result.frames) == (960, 540, 24, 120)
    assert result.duration_s == pytest.approx(5.0)
    assert result.size_bytes == result.path.stat().st_size > 0


def test_first_and_last_frames_are_native_endpoints(landscape: Encoded, landscape_frames: np.ndarray) -> None:
    decoded = landscape_frames
    assert decoded.shape == (120, 540, 960, 3)
    first = upscale(landscape.native[0], 960, 540)
    last = upscale(landscape.native[-1], 960, 540)
    # Small: only scaler differences and lossy H.264/4:2:0 (a wrong colour matrix would be >10).
    assert mean_abs_diff(decoded[0], first) < 4.0
    assert mean_abs_diff(decoded[-1], last) < 4.0
    # ...and not trivially small: the endpoints are distinguishable, so this checks order too.
    assert mean_abs_diff(decoded[0], last) > 10.0


def test_middle_frame_follows_native_timeline(landscape: Encoded, landscape_frames: np.ndarray) -> None:
    # Output frame 60 of 120 sits at native position 60 * 40 / 119 ~= 20.2.
    decoded = landscape_frames[60]
    diffs = {i: mean_abs_diff(decoded, upscale(landscape.native[i], 960, 540)) for i in (10, 20, 30)}
    assert diffs[20] < diffs[10] and diffs[20] < diffs[30]


def test_faststart_moov_before_mdat(landscape: Encoded) -> None:
    boxes = top_level_boxes(landscape.result.path.read_bytes())
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


def test_progress_and_no_temp_files_left(landscape: Encoded) -> None:
    assert landscape.progress == [(i, 120) for i in range(1, 121)]
    assert [p.name for p in landscape.result.path.parent.iterdir()] == ["clip.mp4"]


def test_portrait_9_16(tmp_path: Path) -> None:
    native = synthetic_clip(height=112, width=64)
    result = encode_mp4(native, tmp_path / "portrait.mp4", width=540, height=960, fps=24, output_frames=48)
    info = probe_mp4(result.path)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height) == (540, 960)
    assert info.frames == 48
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    decoded = read_frames(result.path)
    assert mean_abs_diff(decoded[0], upscale(native[0], 540, 960)) < 4.0
    assert mean_abs_diff(decoded[-1], upscale(native[-1], 540, 960)) < 4.0


@pytest.mark.parametrize(("width", "height"), [(961, 540), (960, 541), (0, 540)])
def test_bad_size_raises_and_writes_nothing(tmp_path: Path, width: int, height: int) -> None:
    with pytest.raises(ValueError):
        encode_mp4(synthetic_clip(), tmp_path / "x.mp4", width=width, height=height, fps=24, output_frames=10)
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_leaves_nothing(tmp_path: Path) -> None:
    """Raising from on_frame (how a cancel would look) aborts without a partial file."""

    def cancel(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt  # BaseException: temp cleanup must not depend on Exception

    with pytest.raises(KeyboardInterrupt):
        encode_mp4(
            synthetic_clip(),
            tmp_path / "x.mp4",
            width=320,
            height=180,
            fps=24,
            output_frames=20,
            on_frame=cancel,
        )
    assert list(tmp_path.iterdir()) == []


def test_replaces_existing_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "x.mp4"
    target.write_bytes(b"old")
    encode_mp4(synthetic_clip(), target, width=320, height=180, fps=24, output_frames=12)
    assert probe_mp4(target).frames == 12
    assert [p.name for p in tmp_path.iterdir()] == ["x.mp4"]


# --- poster --------------------------------------------------------------------------


def test_poster_is_first_frame_at_output_size(tmp_path: Path) -> None:
    native = synthetic_clip()
    path = write_poster(native[0], tmp_path / "poster.jpg", width=960, height=540)
    assert path == tmp_path / "poster.jpg"
    assert [p.name for p in tmp_path.iterdir()] == ["poster.jpg"]
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert image.size == (960, 540)
        pixels = np.asarray(image.convert("RGB"))
    assert mean_abs_diff(pixels, upscale(native[0], 960, 540)) < 3.0
    assert mean_abs_diff(pixels, upscale(native[-1], 960, 540)) > 10.0


def slow_cycle(frames: int = 120, height: int = 96, width: int = 160) -> np.ndarray:
    """A closed cycle like a cross-faded loop of the embedded model: a textured background that drifts
    between two textures and a disc circling slowly, so most of each step is fine detail, which is what
    a P-frame smooths and a keyframe restores."""
    rng = np.random.default_rng(0)

    def texture() -> np.ndarray:
        coarse = rng.integers(0, 255, (height // 3, width // 3, 3), dtype=np.uint8)
        return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC),
                          dtype=np.float32) * 0.5 + 60

    first, second = texture(), texture()
    yy, xx = np.mgrid[0:height, 0:width]
    clip = []
    for index in range(frames):
        angle = 2 * np.pi * index / frames
        frame = first + (0.5 - 0.5 * np.cos(angle)) * (second - first)
        disc = (xx - width / 2 - 6 * np.cos(angle)) ** 2 + (yy - height / 2 - 4 * np.sin(angle)) ** 2 < 100
        frame[disc] = (220, 60, 40)
        clip.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(clip)


def wrap_over_median_step(frames: np.ndarray) -> float:
    steps = [mean_abs_diff(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True)]
    return mean_abs_diff(frames[0], frames[-1]) / float(np.median(steps))


def test_loop_encoding_keeps_the_wrap_near_a_step(tmp_path: Path) -> None:
    """A loop's last frame is coded finely enough that wrapping onto the opening keyframe is no larger
    a step than the clip's own: the frames wrap at 0.4x their median step, x264's defaults made that
    2.8x in the decoded file, the loop settings keep it under 2x (1.7x when written)."""
    clip = slow_cycle()
    assert wrap_over_median_step(clip) < 0.6
    wraps = {}
    for loop in (False, True):
        video = encode_frames(iter(clip), tmp_path / f"{loop}.mp4", width=960, height=540, fps=24,
                              total=len(clip), loop=loop)
        wraps[loop] = wrap_over_median_step(read_frames(video.path))
    assert wraps[True] < 2.0
    assert wraps[True] < 0.7 * wraps[False]


def test_keyframes_only_at_the_gop(tmp_path: Path) -> None:
    """``scenecut=0``: keyframes only every ``KEYFRAME_INTERVAL_S``. x264's scene-cut detection put extra
    ones into the embedded model's slow clips, each a visible pulse; a hard cut is what it looks for."""
    clip = slow_cycle()
    clip[30:] = 255 - clip[30:]  # a hard cut at frame 30
    video = encode_frames(iter(clip), tmp_path / "gop.mp4", width=320, height=192, fps=24, total=len(clip))
    with av.open(str(video.path)) as container:
        keyframes = [index for index, frame in enumerate(container.decode(video=0)) if frame.key_frame]
    assert keyframes == list(range(0, len(clip), KEYFRAME_INTERVAL_S * 24))
