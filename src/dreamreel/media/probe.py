"""Read finished MP4s back: what tests and the eval code use to check deliverables.

Checks go through a real decoder (PyAV/FFmpeg) rather than trusting what the encoder was
asked to do, because the contract with API clients is about the file: codec, pixel format,
size, fps, frame count and duration as a player would see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class ProbedVideo:
    """Properties of the first video stream of a file, as a decoder sees them."""

    codec: str
    """Codec name, e.g. ``"h264"``."""
    pix_fmt: str
    """Decoded pixel format, e.g. ``"yuv420p"``."""
    width: int
    height: int
    fps: float
    """Average frame rate from the container."""
    frames: int
    """Frames actually decoded (not the header's claim, which can be missing or wrong)."""
    duration_s: float
    """Stream duration from the container (falls back to frames / fps)."""


def probe_mp4(path: str | Path) -> ProbedVideo:
    """Decode the whole first video stream of ``path`` and describe it.

    Full decoding is deliberate: counting frames and confirming every frame decodes is the
    point of the check, and our clips are at most a few hundred frames.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        codec = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        frames = sum(1 for _ in container.decode(stream))
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        else:
            duration_s = frames / fps if fps else 0.0
        return ProbedVideo(
            codec=codec.name,
            pix_fmt=codec.pix_fmt or "",
            width=codec.width,
            height=codec.height,
            fps=fps,
            frames=frames,
            duration_s=duration_s,
        )


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode ``path`` one ``(H, W, 3)`` uint8 RGB frame at a time (memory: one frame).

    The YUV->RGB conversion honours the stream's colour tags (BT.709 for our outputs), so frames
    are comparable with the RGB frames that went into the encoder.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def read_frames(path: str | Path) -> np.ndarray:
    """Decode every frame of ``path`` to one ``(F, H, W, 3)`` uint8 RGB array.

    Holds the whole clip in memory, so it is meant for small test/eval videos only. The
    YUV->RGB conversion honours the stream's colour tags (BT.709 for our outputs), so the
    result is comparable with the RGB frames that went into the encoder.
    """
    frames = list(iter_frames(path))
    if not frames:
        raise ValueError(f"{path} has no decodable video frames")
    return np.stack(frames)


@dataclass(frozen=True)
class ProbedAudio:
    """Properties of the first audio stream of a file, as a decoder sees them."""

    codec: str
    """Codec name, e.g. ``"aac"``."""
    sample_rate: int
    channels: int
    samples: int
    """Samples per channel actually decoded."""

    @property
    def duration_s(self) -> float:
        """What a player plays: the decoded samples at the stream's rate (encoder priming excluded)."""
        return self.samples / self.sample_rate if self.sample_rate else 0.0


def probe_audio(path: str | Path) -> ProbedAudio | None:
    """Decode the whole first audio stream of ``path`` and describe it; None when the file has no audio."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        codec = stream.codec_context
        samples = sum(frame.samples for frame in container.decode(stream))
        return ProbedAudio(codec=codec.name, sample_rate=codec.sample_rate, channels=codec.channels,
                           samples=samples)


def video_codec(path: str | Path) -> tuple[str, int, int]:
    """``(codec name, coded width, coded height)`` of ``path``'s first video stream, from its header only."""
    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context
        return codec.name, codec.width, codec.height
