"""Encode frames into the exact MP4 (and poster) the user asked for, streaming.

``encode_clip`` writes a delivered clip (``engine.render``'s frames) and its poster; ``encode_mp4`` a native
clip resampled on the way (previews). Pipeline per output frame: [temporal resample at native size
(:mod:`.resample`)] -> RGB-to-yuv420p conversion *and* upscale to ``width x height`` in one libswscale call ->
libx264. Only one output-size frame is alive on the Python side at a time; the encoder's
own look-ahead/reference buffers are bounded by its settings, not by the clip length. That
is what lets 3840x2160 (or 5040x2160) x 216 frames run on a machine that could never hold
the whole output as one array (4k x 216 RGB frames would be ~5.4 GB).

Outputs are written to a hidden temp file next to the destination and ``os.replace``-d into
place, so anything serving or polling the path sees either nothing or a complete file, never
a half-written MP4 (the faststart pass rewrites the whole file at the end, which makes a
non-atomic write especially visible).

The encode starts once the model's whole clip is decoded; it does not consume frames while the VAE is still
decoding later ones. Measured on the embedded model, 2 CPU cores (``bench/probe_decode_overlap.py``,
``docs/benchmarks.md``, "x264 preset per speed preset"): diffusers' temporal tiling of the LTX VAE lands 27 dB
from the whole decode (the floor is 40); chunks decoded with two latent frames of context a side are faithful
(51 dB, worst frame 41) but decode about twice the latent frames, and with the decode and x264 on the same two
cores overlapping them was slower than decoding first (1.17x at 540p 5 s). On a GPU the decode and the encoder
would run on different hardware, which is where the overlap can pay; rerun the probe there before building it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from av.video.reformatter import (
    ColorPrimaries,
    ColorRange,
    Colorspace,
    ColorTrc,
    Interpolation,
    VideoReformatter,
)
from PIL import Image

from dreamreel.media.audio import AudioTrack
from dreamreel.media.resample import iter_output_frames
from dreamreel.media.x264 import DEFAULT_PRESET, LIBX264_PRESETS

SCALE_INTERPOLATION = Interpolation.BICUBIC
"""libswscale filter for the native -> output upscale.

Upscale factors here are large (112 -> 3840 is ~34x). Bicubic is sharp enough for that and,
unlike Lanczos, does not ring (halo) around hard edges at such factors; it also costs only a
few ms per 4k frame, negligible next to x264.
"""

KEYFRAME_INTERVAL_S = 2
"""Maximum GOP length in seconds.

x264's default (250 frames) would make a whole 5-9 s clip one GOP, so a browser seeking
near the end of a 4k clip has to decode every frame before it. A 2 s GOP is the usual
web-delivery trade-off: a few % more bytes for responsive scrubbing.
"""

LOOP_TAIL_FRAMES = 4
"""A loop's last frames coded at :data:`LOOP_TAIL_BITRATE` times the bits (see :func:`x264_params`)."""

LOOP_TAIL_BITRATE = 3

MAX_ENCODER_THREADS = 16
"""Upper bound on x264 frame threads: each one keeps its own full-size frames in flight,
so on a big host more threads buys little speed but a lot of 4k memory."""

POSTER_JPEG_QUALITY = 90

AUDIO_CODEC = "aac"
"""The sound of a clip that has one (``AudioTrack``): AAC-LC, what every MP4 player plays, at the track's own
rate (LTX-2: 24 kHz) and channels (stereo, or mono)."""
AUDIO_BITRATE = 128_000


def x264_params(total: int, *, loop: bool) -> str:
    """libx264 settings beyond CRF and preset, for a clip of ``total`` frames.

    Every clip: ``scenecut=0``. A generated clip has no cuts, but x264 still put extra keyframes
    into slow clips, and the step into a keyframe is a visible pulse: the keyframe carries detail
    the P-frames before it had smoothed away. With the fixed 2 s GOP only, the largest step of a
    clip fell from 2.17x to 1.69x its median (``bench/bench_loop_codec.py``), at 7 % fewer bytes.

    A loop also gets ``mbtree=0`` and its last :data:`LOOP_TAIL_FRAMES` frames coded with
    :data:`LOOP_TAIL_BITRATE` times the bits. A player wraps from the clip's last frame, a P-frame
    deep in its GOP, to its first, the keyframe the macroblock tree spent the most bits on. Their
    coding errors differ, so the wrap was 2.04x the clip's median step where the frames themselves
    differ by 0.75x. These settings bring it to 1.33x. They cost about 2.2x the bytes, for loops only
    (``docs/benchmarks.md``, "Loops and the codec").
    """
    params = ["scenecut=0"]
    if loop:
        tail_start = max(0, total - LOOP_TAIL_FRAMES)
        params += ["mbtree=0", f"zones={tail_start},{total - 1},b={LOOP_TAIL_BITRATE}"]
    return ":".join(params)


def scale_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` (uint8 RGB) scaled to ``width x height`` with the encoder's own filter, for code that must
    work on delivered-size pixels before encoding (``media.seam``)."""
    if frame.shape[:2] == (height, width):
        return frame
    source = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    return source.reformat(width=width, height=height, format="rgb24", interpolation=SCALE_INTERPOLATION).to_ndarray()


@dataclass(frozen=True)
class EncodedVideo:
    """What was written, for the job record and the API response.

    ``duration_s`` is ``frames / fps`` by construction (the stream's time base is
    ``1/fps`` and every frame lasts one tick), which is what the user asked for.
    """

    path: Path
    width: int
    height: int
    fps: int
    frames: int
    duration_s: float
    size_bytes: int


def encode_mp4(
    native: np.ndarray,
    path: str | Path,
    *,
    width: int,
    height: int,
    fps: int,
    output_frames: int,
    crf: int = 20,
    preset: str = DEFAULT_PRESET,
    on_frame: Callable[[int, int], None] | None = None,
) -> EncodedVideo:
    """Resample ``native`` (``(F, h, w, 3)`` uint8) to an H.264 yuv420p faststart MP4.

    The output has exactly ``output_frames`` frames of ``width x height`` at ``fps``, the
    first and last frames being the native first and last frames (upscaled). ``width`` and
    ``height`` must be even because yuv420p subsamples chroma 2x2; we refuse odd sizes
    instead of silently cropping/padding so the caller's size contract stays exact.

    ``on_frame(done, total)`` is called after each frame is handed to the encoder; it is the
    progress hook for job status, and raising from it aborts the encode (e.g. on cancel) —
    the temp file is then removed and nothing appears at ``path``.

    Defaults (CRF 20, ``veryfast``) are chosen for a CPU-bound 2-core worker: the upscaled
    content is smooth, so slower presets spend a lot of time for little size gain.
    """
    _check_output_size(width, height)
    if fps < 1:
        raise ValueError(f"fps must be >= 1, got {fps}")
    if output_frames < 1:
        raise ValueError(f"output_frames must be >= 1, got {output_frames}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    frames = iter_output_frames(native, output_frames)  # validates `native` eagerly
    return encode_frames(frames, path, width=width, height=height, fps=fps, total=output_frames, crf=crf,
                         preset=preset, on_frame=on_frame)


def write_poster(frame: np.ndarray, path: str | Path, *, width: int, height: int) -> Path:
    """Write ``frame`` (``(h, w, 3)`` uint8, normally native frame 0) as a JPEG of ``width x height``.

    The poster is shown before the video loads, so it must match the video's first frame
    and display size; it is scaled with bicubic like the video (Pillow's, not swscale's, so
    close but not bit-identical). Written atomically for the same reason as the MP4.
    Unlike the video, odd sizes are fine here (JPEG has no 4:2:0 constraint at the API level).
    """
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be an (h, w, 3) uint8 array, got {frame.dtype} {frame.shape}")
    if width < 1 or height < 1:
        raise ValueError(f"poster size must be positive, got {width}x{height}")
    image = Image.fromarray(np.ascontiguousarray(frame))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BICUBIC)

    final = Path(path)
    tmp = _temp_sibling(final)
    try:
        image.save(tmp, format="JPEG", quality=POSTER_JPEG_QUALITY, optimize=True)
        _publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _encode_stream(
    frames: Iterable[np.ndarray],
    path: Path,
    *,
    width: int,
    height: int,
    fps: int,
    total: int,
    crf: int,
    preset: str,
    loop: bool,
    on_frame: Callable[[int, int], None] | None,
    audio: AudioTrack | None = None,
) -> None:
    """Scale + encode native-size RGB frames (and ``audio``, interleaved with them) into an MP4 at ``path`` (not
    atomic by itself)."""
    time_base = Fraction(1, fps)
    # format="mp4" explicitly: the temp name does not end in .mp4. faststart moves the moov
    # box to the front in a second pass at close, so browsers can start playing (and seek)
    # before the whole file has downloaded.
    with av.open(str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={"crf": str(crf), "preset": preset, "x264-params": x264_params(total, loop=loop)},
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        codec = stream.codec_context
        # Time base 1/fps with pts = frame index: every frame is exactly one tick, so the
        # container duration is exactly total / fps (the mp4 muxer scales the track
        # timescale to an exact multiple, e.g. 12288 for 24 fps).
        codec.time_base = time_base
        codec.gop_size = round(KEYFRAME_INTERVAL_S * fps)
        # PyAV defaults encoders to slice threading; x264 frame threading compresses better
        # and, at 1.5x cores (x264's own heuristic: keeps both cores busy while one thread
        # waits on its reference rows), was ~25% faster at 4k on a 2-core box.
        codec.thread_type = "FRAME"
        codec.thread_count = _encoder_threads()
        # Tag BT.709 limited range (what swscale is told to produce below) in the H.264 VUI
        # and the mp4 colr box. Untagged HD video gets guessed as BT.601 by some players,
        # which visibly shifts greens/reds.
        codec.colorspace = int(Colorspace.ITU709)  # SWS_CS_ITU709 == AVCOL_SPC_BT709 == 1
        codec.color_range = int(ColorRange.MPEG)
        codec.color_primaries = int(ColorPrimaries.BT709)
        codec.color_trc = int(ColorTrc.BT709)

        # One reformatter for the whole clip: it keeps the SwsContext (filter tables for a
        # 4k-wide bicubic upscale) across frames instead of rebuilding it per frame the way
        # VideoFrame.reformat() does (2-3x cheaper per frame). Single-threaded because x264
        # already saturates the cores; swscale's pool would only contend.
        scaler = VideoReformatter()
        sound = _AudioMuxer(container, audio) if audio is not None else None
        done = 0
        for rgb in frames:
            source = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            out = scaler.reformat(
                source,
                width=width,
                height=height,
                format="yuv420p",
                interpolation=SCALE_INTERPOLATION,
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
                threads=1,
            )
            out.color_primaries = int(ColorPrimaries.BT709)
            out.color_trc = int(ColorTrc.BT709)
            out.pts = done
            out.time_base = time_base
            for packet in stream.encode(out):
                container.mux(packet)
            done += 1
            if sound is not None:  # the sound up to this frame's end, so the file interleaves as it plays
                sound.until(done / fps)
            if on_frame is not None:
                on_frame(done, total)
        for packet in stream.encode(None):  # flush delayed (B-/look-ahead) frames
            container.mux(packet)
        if sound is not None:
            sound.finish()
    if done != total:
        raise RuntimeError(f"expected {total} frames from the resampler, got {done}")


class _AudioMuxer:
    """Encodes a track into an AAC stream of ``container`` piece by piece, as the video reaches each moment."""

    def __init__(self, container: av.container.OutputContainer, audio: AudioTrack) -> None:
        if audio.channels > 2:
            audio = audio.converted(audio.sample_rate, 2)
        self.container, self.audio = container, audio
        self.layout = "stereo" if audio.channels == 2 else "mono"
        self.stream = container.add_stream(AUDIO_CODEC, rate=audio.sample_rate, layout=self.layout)
        self.stream.bit_rate = AUDIO_BITRATE
        self.written = 0

    def until(self, seconds: float) -> None:
        end = min(self.audio.samples.shape[1], round(seconds * self.audio.sample_rate))
        if end <= self.written:
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(self.audio.samples[:, self.written : end]),
                                           format="fltp", layout=self.layout)
        frame.sample_rate = self.audio.sample_rate
        frame.pts = self.written
        frame.time_base = Fraction(1, self.audio.sample_rate)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.written = end

    def finish(self) -> None:
        self.until(self.audio.duration_s)
        for packet in self.stream.encode(None):
            self.container.mux(packet)


def remux_with_audio(source: str | Path, audio: AudioTrack, path: str | Path) -> EncodedVideo:
    """``source``'s video stream copied packet for packet (not decoded: every frame stays bit-exact) into a new MP4
    at ``path`` with ``audio`` as its sound (any sound ``source`` had is dropped); written atomically."""
    final = Path(path)
    tmp = _temp_sibling(final)
    try:
        with av.open(str(source)) as src, av.open(str(tmp), mode="w", format="mp4",
                                                   container_options={"movflags": "+faststart"}) as out:
            video_in = src.streams.video[0]
            video_out = out.add_stream_from_template(video_in)
            sound = _AudioMuxer(out, audio)
            frames, seconds = 0, 0.0
            for packet in src.demux(video_in):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = video_out
                if packet.pts is not None and packet.time_base is not None:
                    seconds = max(seconds, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                out.mux(packet)
                frames += 1
                sound.until(seconds)
            sound.finish()
            rate = video_in.average_rate or video_in.guessed_rate
            width, height = video_in.codec_context.width, video_in.codec_context.height
        _publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fps = round(float(rate)) if rate else 0
    return EncodedVideo(path=final, width=width, height=height, fps=fps, frames=frames,
                        duration_s=frames / fps if fps else seconds, size_bytes=final.stat().st_size)


def check_preset(preset: str) -> None:
    """Refuse a ``preset`` libx264 does not have, naming the ones it has."""
    if preset not in LIBX264_PRESETS:
        raise ValueError(f"unknown libx264 preset {preset!r}; choose one of {', '.join(LIBX264_PRESETS)}")


def _check_output_size(width: int, height: int) -> None:
    """yuv420p (and x264 with it) needs even dimensions; refuse rather than crop/pad."""
    if width < 2 or height < 2:
        raise ValueError(f"output size must be at least 2x2, got {width}x{height}")
    if width % 2 or height % 2:
        raise ValueError(f"output width and height must be even for yuv420p, got {width}x{height}")


def _encoder_threads() -> int:
    """x264 frame threads: 1.5x the CPUs this process may run on, capped.

    Uses the affinity mask rather than ``os.cpu_count()`` so a worker pinned to 2 cores of
    a big host does not spawn threads for cores it cannot use.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS/Windows
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_ENCODER_THREADS, cpus * 3 // 2))


def _temp_sibling(final: Path) -> Path:
    """A unique hidden temp path in the destination's directory.

    Same directory so ``os.replace`` is a same-filesystem rename (atomic); hidden and with
    a ``.part`` suffix so globbing for ``*.mp4``/``*.jpg`` never picks up an unfinished file.
    """
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")


def _publish(tmp: Path, final: Path) -> None:
    """fsync the finished temp file, atomically rename it over ``final``, fsync the directory.

    The fsyncs make "the path exists" imply "the bytes are on disk", so a crash right after
    a job is marked done cannot leave a truncated deliverable behind a successful status.
    """
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    try:
        dir_fd = os.open(final.parent, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open directories; the rename already happened
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def encode_frames(
    frames: Iterable[np.ndarray],
    path: str | Path,
    *,
    width: int,
    height: int,
    fps: int,
    total: int,
    crf: int = 20,
    preset: str = DEFAULT_PRESET,
    loop: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
    audio: AudioTrack | None = None,
) -> EncodedVideo:
    """Encode already-ordered RGB frames of any size (each scaled to ``width x height``) to an MP4, with ``audio``
    as its AAC sound when given.

    For clips assembled from several parts (an extension delivered with its source clip) or decoded from
    another MP4 (an upscale): the caller yields every frame in order and says how many there will be; a
    different count is an error and leaves no file behind. ``loop``: the clip is played in a loop
    (:func:`x264_params`). ``on_frame`` as in :func:`encode_mp4`. ``preset``: one of :data:`LIBX264_PRESETS`
    (``ValueError`` otherwise, before anything is written).
    """
    _check_output_size(width, height)
    check_preset(preset)
    final = Path(path)
    tmp = _temp_sibling(final)
    try:
        _encode_stream(frames, tmp, width=width, height=height, fps=fps, total=total, crf=crf, preset=preset,
                       loop=loop, on_frame=on_frame, audio=audio)
        _publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return EncodedVideo(path=final, width=width, height=height, fps=fps, frames=total, duration_s=total / fps,
                        size_bytes=final.stat().st_size)


class FrameStream(Protocol):
    """A clip as ordered frames to encode (``engine.render.RenderedClip`` is one): ``frames`` yields ``total``
    RGB frames of any size, each scaled to ``width x height``; ``loop`` as in :func:`x264_params`.

    Optional attributes (read with ``getattr``, so a stream without them is a silent clip, encoded as always):
    ``audio``, an :class:`~dreamreel.media.audio.AudioTrack` of the clip's duration, muxed as AAC; and
    ``video_copy``, the path of an H.264 MP4 whose video stream *is* the clip's picture (``frames`` are its
    frames): it is copied rather than re-encoded, so the picture stays bit-exact (an ``add_audio``)."""

    @property
    def frames(self) -> Iterator[np.ndarray]: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def fps(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def loop(self) -> bool: ...


@dataclass(frozen=True)
class EncodedClip:
    video: EncodedVideo
    poster: Path | None


def encode_clip(clip: FrameStream, video_path: str | Path, poster_path: str | Path | None = None, *,
                preset: str = DEFAULT_PRESET) -> EncodedClip:
    """Write ``clip`` as the delivered MP4 (:func:`encode_frames`, with libx264's ``preset``: a speed preset's
    is ``X264_PRESETS[speed]``) and, with ``poster_path``, its poster: the first delivered frame
    (:func:`write_poster`), kept as it streams past rather than decoded again. An unknown ``preset`` is a
    ``ValueError`` before anything is read or written, even for a clip whose picture is copied.

    The one way a generated clip reaches disk, for the worker and ``dreamreel generate`` alike."""
    check_preset(preset)
    video_path = Path(video_path)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    first: list[np.ndarray] = []

    def remember_first(stream: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in stream:
            if not first:
                first.append(frame)
            yield frame

    audio: AudioTrack | None = getattr(clip, "audio", None)
    copy: Path | None = getattr(clip, "video_copy", None)
    if copy is not None and audio is not None:  # the picture as it is, with new sound
        video = remux_with_audio(copy, audio, video_path)
        first.append(next(iter(clip.frames)))
    else:
        video = encode_frames(remember_first(clip.frames), video_path, width=clip.width, height=clip.height,
                              fps=clip.fps, total=clip.total, loop=clip.loop, audio=audio, preset=preset)
    poster = None
    if poster_path is not None:
        poster = write_poster(first[0], poster_path, width=clip.width, height=clip.height)
    return EncodedClip(video=video, poster=poster)
