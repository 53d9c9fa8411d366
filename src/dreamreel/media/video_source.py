"""An edit's source video, read safely: what it is (from its header and first frame) and frames sampled from it.

The file comes from a client (an upload, a fetched URL), so nothing about it is trusted:

* **Sniffed, never believed.** The container is recognised from its first bytes (:func:`sniff_container`), not
  from a ``Content-Type`` or a file name, and PyAV is then told which demuxer to use (``mov`` or ``matroska``)
  instead of letting FFmpeg probe: a probe can pick a playlist or ``concat`` demuxer that reads other files.
* **Capped before decoding.** The frame size (at most 4k: ``core.edits.MAX_SOURCE_SIDE``/``MAX_SOURCE_PIXELS``),
  the codec (:data:`CODECS`) and the frame count (:data:`MAX_SOURCE_FRAMES`) are read from the header and
  refused there (FFmpeg's decoder is also told the pixel cap, so no frame over it is ever allocated, not even
  by the probe that runs as the file opens); only then is one frame decoded, to learn its display rotation
  (a phone's portrait clip is stored landscape with a rotation tag) and to know that the stream decodes.
* **Streamed.** :func:`iter_sampled_frames` holds O(1) frames, stops decoding once its last frame is out, and
  stops a stream whose timestamps never reach the end its header states (:data:`FRAME_MARGIN`).

Facts describe the video as it is *shown*: a clip stored 1920x1080 with a 90° rotation tag is 1080x1920, and
its sampled frames are upright. Every failure is a :class:`VideoSourceError` whose message can be shown to the
client as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import av
import numpy as np
from av.container import InputContainer
from av.video.reformatter import Interpolation
from av.video.stream import VideoStream

from dreamreel.core.edits import MAX_SOURCE_PIXELS, MAX_SOURCE_SIDE, SourceFacts
from dreamreel.core.request import MAX_EDIT_S

VideoInput = str | os.PathLike[str] | BinaryIO
"""A path, or a binary file object positioned at the video's first byte (an upload still in memory)."""

SNIFF_BYTES = 12
"""Bytes :func:`sniff_container` needs: an ISO BMFF box header and its major brand."""
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
"""Every Matroska file (WebM is its web profile) begins with an EBML header."""
_STILL_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
"""HEIF/AVIF pictures are ISO BMFF files too; they are images, not videos."""
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip"})
"""QuickTime files older than the ``ftyp`` box begin with one of these atoms."""
_DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska"}

CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "prores"})
"""Video codecs an edit's source may use: what phones, cameras, browsers (MediaRecorder) and editors write
into MP4, MOV and WebM. Others (MJPEG, MPEG-2, raw, lossless intermediates) are refused by name."""
MAX_SOURCE_FPS = 120
MAX_SOURCE_FRAMES = MAX_EDIT_S * MAX_SOURCE_FPS
"""The longest edit (30 s) at a high-speed camera's 120 fps: a header claiming more frames is refused."""
FRAME_MARGIN = 16
"""Frames decoded past what the header states (or a tenth more, whichever is larger) before a stream whose
timestamps never reach its stated end is refused."""
_MAX_PLAUSIBLE_FPS = 1000.0
"""A container rate above this is a time base leaking through, not a frame rate."""
_DECODER_LIMITS = {"max_pixels": str(MAX_SOURCE_PIXELS)}
"""FFmpeg's own cap on a decoded frame, for the decodes our header check cannot precede (FFmpeg's stream probe
when the file is opened) and for a stream whose frames grow past its header: it refuses to allocate them."""
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)


class VideoSourceError(Exception):
    """The file is not a video this server can use; the message says why, in words a client can act on."""


class VideoTooLarge(VideoSourceError):
    """The video's header states a frame size or length over the caps (refused before decoding)."""


def sniff_container(head: bytes) -> str | None:
    """``"mp4"``, ``"mov"`` or ``"webm"`` from a file's first :data:`SNIFF_BYTES` bytes; None for anything else.

    ISO BMFF (``ftyp`` box): major brand ``qt`` is QuickTime, any other is MP4, except the HEIF/AVIF still-image
    brands. EBML (Matroska, WebM's container) is ``"webm"``: the demuxer is the same and the codec allow-list
    decides what plays.
    """
    if head[:4] == EBML_MAGIC:
        return "webm"
    box = head[4:8]
    if box == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _STILL_IMAGE_BRANDS:
            return None
        return "mov" if brand == b"qt  " else "mp4"
    if box in _QUICKTIME_ATOMS:
        return "mov"
    return None


def read_facts(source: VideoInput) -> SourceFacts:
    """Size (upright), frame rate and frame count of ``source``'s video, from its header and first frame.

    Raises :class:`VideoTooLarge` for a frame size over 4k or more than :data:`MAX_SOURCE_FRAMES` frames
    (before decoding), :class:`VideoSourceError` for anything else unusable: not MP4/MOV/WebM, corrupt, no
    video stream, a codec outside :data:`CODECS`, no frame that decodes. A header without a frame count or
    duration (a browser's live-recorded WebM) has its packets counted, without decoding them.
    """
    with _opened(source) as (container, stream):
        width, height = _checked_size(stream.codec_context.width, stream.codec_context.height)
        rate, seconds = _header_rate(stream), _header_seconds(container, stream)
        frames = stream.frames if stream.frames > 0 else round(seconds * rate) if seconds and rate else None
        if rate is None and frames and seconds:
            rate = frames / seconds
        if frames is not None:
            _check_frame_count(frames, rate)
        first, counted, span_s = _scan(container, stream, count=frames is None)
        if frames is None:
            frames = counted
            _check_frame_count(frames, rate)
            if rate is None and frames > 1 and span_s > 0:
                rate = (frames - 1) / span_s
        if rate is None:
            raise VideoSourceError("the video states no frame rate")
        if frames <= 0:
            raise VideoSourceError("the video has no frames")
        if _quarter_turns(first) % 2:
            width, height = height, width
        return SourceFacts(width=width, height=height, fps=rate, frames=frames)


def iter_sampled_frames(source: VideoInput, count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """``count`` frames evenly spaced in time from ``source``'s first frame to its last (both included; one
    frame: the first), each the decoded frame nearest its time, upright and resized to exactly ``width`` x
    ``height`` (stretched: callers pass a size of the right aspect), as ``(height, width, 3)`` uint8 RGB.

    Times come from the frames' timestamps (from their index and the rate where a frame has none), the end
    from the header (:func:`read_facts`). Holds O(1) frames; decoding stops at the last one asked for.
    Raises :class:`VideoSourceError` (also mid-way, for a stream that stops decoding).
    """
    if count < 1 or width < 1 or height < 1:
        raise ValueError(f"need count, width and height >= 1, got {count}, {width}, {height}")
    facts = read_facts(source)
    span_s = (facts.frames - 1) / facts.fps
    targets = [span_s * k / (count - 1) for k in range(count)] if count > 1 else [0.0]
    cap = facts.frames + max(FRAME_MARGIN, facts.frames // 10)
    with _opened(source) as (container, stream):
        yield from _nearest_frames(container.decode(stream), targets, facts.fps, cap, (width, height))


def sample_frames(source: VideoInput, count: int, width: int, height: int) -> np.ndarray:
    """:func:`iter_sampled_frames` stacked into one ``(count, height, width, 3)`` array (for small counts)."""
    return np.stack(list(iter_sampled_frames(source, count, width, height)))


# --- opening and the header --------------------------------------------------------------------------------


def _head(source: VideoInput) -> bytes:
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb") as file:
                return file.read(SNIFF_BYTES)
        except OSError as exc:
            raise VideoSourceError(f"the video cannot be read ({exc.strerror or type(exc).__name__})") from None
    position = source.tell()
    head = source.read(SNIFF_BYTES)
    source.seek(position)
    return head


def _describe(exc: BaseException) -> str:
    """FFmpeg's reason without the file's path (a worker's temporary path means nothing to a client)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@contextmanager
def _opened(source: VideoInput) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The sniffed container opened with its own demuxer, and its video stream (codec checked); FFmpeg's
    errors inside the block become :class:`VideoSourceError`."""
    kind = sniff_container(_head(source))
    start = None if isinstance(source, str | os.PathLike) else source.tell()
    if kind is None:
        raise VideoSourceError("not an MP4, MOV or WebM video (judged from its first bytes)")
    try:
        container = av.open(source if not isinstance(source, os.PathLike) else os.fspath(source), mode="r",
                            format=_DEMUXERS[kind], options=_DECODER_LIMITS)
    except _AV_ERRORS as exc:
        raise VideoSourceError(f"the {kind.upper()} file cannot be read: {_describe(exc)}") from None
    try:
        yield container, _video_stream(container)
    except _AV_ERRORS as exc:
        raise VideoSourceError(f"the video does not decode: {_describe(exc)}") from None
    finally:
        container.close()
        if start is not None:  # a file object is read again from its start (facts, then frames)
            source.seek(start)  # type: ignore[union-attr]


def _video_stream(container: InputContainer) -> VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise VideoSourceError("the file has no video stream")
    stream = streams[0]
    context = stream.codec_context
    if context is None:
        raise VideoSourceError("the video is coded in a format this server has no decoder for")
    codec = context.codec.canonical_name
    if codec not in CODECS:
        raise VideoSourceError(f"the video is coded as {codec}; accepted codecs are {', '.join(sorted(CODECS))}")
    context.options = {**context.options, **_DECODER_LIMITS}
    stream.thread_type = "AUTO"
    return stream


def _checked_size(width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise VideoSourceError("the video stream states no frame size")
    if max(width, height) > MAX_SOURCE_SIDE or width * height > MAX_SOURCE_PIXELS:
        raise VideoTooLarge(f"the video is {width}x{height}; the largest accepted is 4k ({MAX_SOURCE_PIXELS} "
                            f"pixels, sides up to {MAX_SOURCE_SIDE})")
    return width, height


def _header_rate(stream: VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    value = float(rate) if rate else 0.0
    return value if 0 < value <= _MAX_PLAUSIBLE_FPS else None


def _header_seconds(container: InputContainer, stream: VideoStream) -> float | None:
    """The stream's duration, else the container's; None when the header states neither."""
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        return None
    return seconds if seconds > 0 else None


def _check_frame_count(frames: int, rate: float | None) -> None:
    if frames > MAX_SOURCE_FRAMES:
        length = f" ({frames / rate:.1f} s)" if rate else ""
        raise VideoTooLarge(f"the video has {frames} frames{length}; at most {MAX_SOURCE_FRAMES} are read "
                            f"({MAX_EDIT_S} s at {MAX_SOURCE_FPS} fps)")


def _scan(container: InputContainer, stream: VideoStream, *, count: bool) -> tuple[av.VideoFrame, int, float]:
    """The first decoded frame, and (when ``count``) the number of video packets and the seconds between the
    first and last packet's timestamps, demuxed without decoding and stopped past the frame cap."""
    first: av.VideoFrame | None = None
    packets, earliest, latest = 0, float("inf"), float("-inf")
    for packet in container.demux(stream):
        if first is None:
            first = next(iter(packet.decode()), None)
        if not count:
            if first is not None:
                break
            continue
        if packet.size:
            packets += 1
            if packets > MAX_SOURCE_FRAMES:
                break
            if packet.pts is not None and packet.time_base is not None:
                seconds = float(packet.pts * packet.time_base)
                earliest, latest = min(earliest, seconds), max(latest, seconds)
    if first is None:
        raise VideoSourceError("no frame of the video decodes")
    _checked_size(first.width, first.height)
    return first, packets, latest - earliest if latest > earliest else 0.0


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright (its display matrix, to the nearest 90°)."""
    return round(frame.rotation / 90) % 4


# --- sampling ----------------------------------------------------------------------------------------------


def _nearest_frames(
    decoded: Iterator[av.VideoFrame], targets: list[float], fps: float, cap: int, size: tuple[int, int]
) -> Iterator[np.ndarray]:
    """For each target time (seconds from the first frame, ascending) the decoded frame nearest it."""
    wanted = 0
    previous: tuple[float, av.VideoFrame] | None = None
    start: float | None = None
    last: tuple[av.VideoFrame, np.ndarray] | None = None

    def converted(frame: av.VideoFrame) -> np.ndarray:
        nonlocal last
        if last is None or last[0] is not frame:
            last = (frame, _to_rgb(frame, *size))
            return last[1]
        return last[1].copy()  # the same frame again (more targets than frames): a separate array

    for index, frame in enumerate(decoded):
        if index >= cap:
            raise VideoSourceError(f"the video decodes to more than {cap} frames before reaching the end its header "
                                   "states; its timestamps are unusable")
        _checked_size(frame.width, frame.height)
        if frame.time is not None and start is None:
            start = frame.time
        t = frame.time - start if frame.time is not None and start is not None else index / fps
        while wanted < len(targets) and t >= targets[wanted]:
            target = targets[wanted]
            nearer_before = previous is not None and target - previous[0] < t - target
            yield converted(previous[1] if nearer_before and previous is not None else frame)
            wanted += 1
        if wanted == len(targets):
            return
        previous = (t, frame)
    if previous is None:
        raise VideoSourceError("no frame of the video decodes")
    for _ in range(wanted, len(targets)):  # the stream ended before the header said: its last frame
        yield converted(previous[1])


def _to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """``frame`` upright at ``width`` x ``height``: Lanczos when shrinking (sharp, alias-free), bicubic when
    enlarging (Lanczos rings at large factors, see ``media/encode.py``); the stream's colour range honoured."""
    turns = _quarter_turns(frame)
    stored_w, stored_h = (height, width) if turns % 2 else (width, height)
    shrinking = stored_w <= frame.width and stored_h <= frame.height
    rgb = frame.reformat(
        width=stored_w, height=stored_h, format="rgb24", src_color_range=frame.color_range or None,
        interpolation=Interpolation.LANCZOS if shrinking else Interpolation.BICUBIC,
    ).to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb
