"""A clip's sound as samples: the track a model makes with its frames, cut and joined to the delivered clip.

A model that makes sound (LTX-2) makes it for the native clip, in real time: its track lasts the native frames'
duration at the native fps. The delivered clip is laid out from the native one (anchors dropped, resampled to
24 fps, joined to the clips it extends), and its sound follows in real time, never stretched: the piece of the
track from the first delivered frame's moment on, cut or padded with silence to the delivered duration
(:meth:`AudioTrack.segment`), joined to the extended clips' own sound or silence (:func:`concatenate`), and for a
loop the sound past the end dissolved into its start (:meth:`AudioTrack.looped`). Numpy and PyAV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

LOOP_CROSSFADE_S = 0.25
"""Longest cross-fade that closes a looping clip's sound onto its start (shorter where the track has less sound
past the clip's end)."""


@dataclass(frozen=True)
class AudioTrack:
    """``samples``: float32 ``(channels, n)`` in [-1, 1]; ``sample_rate`` in Hz."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[0] < 1 or self.samples.dtype != np.float32:
            raise ValueError(f"samples must be float32 (channels, n), got {self.samples.dtype}{self.samples.shape}")
        if self.sample_rate < 1:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def segment(self, start_s: float, duration_s: float) -> AudioTrack:
        """``duration_s`` of sound from ``start_s`` on (exactly ``round(duration_s * rate)`` samples), silence
        where the track has none."""
        start, count = round(start_s * self.sample_rate), max(0, round(duration_s * self.sample_rate))
        out = np.zeros((self.channels, count), dtype=np.float32)
        begin, end = max(0, start), min(self.samples.shape[1], start + count)
        if end > begin:
            out[:, begin - start : end - start] = self.samples[:, begin:end]
        return AudioTrack(out, self.sample_rate)

    def looped(self, duration_s: float) -> AudioTrack:
        """The first ``duration_s`` with the sound that follows them (up to :data:`LOOP_CROSSFADE_S`) dissolved
        into their start: played in a loop, the end runs on into the start as the track itself ran on."""
        count = round(duration_s * self.sample_rate)
        head = self.segment(0.0, duration_s).samples
        spare = min(self.samples.shape[1] - count, round(LOOP_CROSSFADE_S * self.sample_rate), count)
        if spare > 0:
            ramp = np.linspace(0.0, 1.0, spare, dtype=np.float32)
            head[:, :spare] = head[:, :spare] * ramp + self.samples[:, count : count + spare] * (1.0 - ramp)
        return AudioTrack(head, self.sample_rate)

    def converted(self, sample_rate: int, channels: int) -> AudioTrack:
        """This track at another rate (linear interpolation: joining clips, not mastering) and channel count
        (mono is spread to every channel; several are averaged down to mono or cut to fewer)."""
        samples = self.samples
        if channels == 1 and self.channels > 1:
            samples = samples.mean(axis=0, keepdims=True)
        elif channels > self.channels:
            samples = np.repeat(samples.mean(axis=0, keepdims=True), channels, axis=0)
        elif channels < self.channels:
            samples = samples[:channels]
        if sample_rate != self.sample_rate and samples.shape[1]:
            count = round(samples.shape[1] * sample_rate / self.sample_rate)
            positions = np.arange(count) * (self.sample_rate / sample_rate)
            source = np.arange(samples.shape[1])
            samples = np.stack([np.interp(positions, source, channel) for channel in samples])
        return AudioTrack(np.ascontiguousarray(samples, dtype=np.float32), sample_rate)


def silence(duration_s: float, sample_rate: int, channels: int) -> AudioTrack:
    return AudioTrack(np.zeros((channels, round(duration_s * sample_rate)), dtype=np.float32), sample_rate)


def concatenate(tracks: Sequence[AudioTrack]) -> AudioTrack:
    """``tracks`` one after another, at the first one's rate and channel count."""
    if not tracks:
        raise ValueError("nothing to concatenate")
    first = tracks[0]
    parts = [track.converted(first.sample_rate, first.channels).samples for track in tracks]
    return AudioTrack(np.concatenate(parts, axis=1), first.sample_rate)


def read_audio(path: str | Path) -> AudioTrack | None:
    """The first audio stream of ``path`` decoded to float32 at its own rate and channel count, or None when the
    file has no audio."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        # Planar float whatever the codec decodes to (AAC: fltp already; others may be packed or integer).
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout,
                                      rate=stream.codec_context.sample_rate)
        chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
        rate = stream.codec_context.sample_rate
    chunks = [chunk for chunk in chunks if chunk.shape[1]]
    if not chunks:
        return None
    return AudioTrack(np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32), rate)


def clip_sound(path: str | Path, duration_s: float, sample_rate: int, channels: int) -> AudioTrack:
    """An earlier clip's sound for exactly ``duration_s`` (its own, cut or padded; silence for a silent clip), at
    ``sample_rate`` and ``channels``: the part of an extension's sound that its source clip plays."""
    track = read_audio(path)
    if track is None:
        return silence(duration_s, sample_rate, channels)
    return track.converted(sample_rate, channels).segment(0.0, duration_s)
