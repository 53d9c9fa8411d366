"""A model's sound laid out as the delivered clip is: cut in real time, joined to other clips' sound, closed into
a loop, and written to and read back from an MP4 as AAC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dreamreel.engine.plan import Plan
from dreamreel.engine.render import part_sound
from dreamreel.media.audio import LOOP_CROSSFADE_S, AudioTrack, clip_sound, concatenate, read_audio
from dreamreel.media.encode import encode_frames
from dreamreel.media.probe import probe_audio

RATE = 24000


def ramp(seconds: float, channels: int = 2) -> AudioTrack:
    """A track whose every sample says its own time (sample i is i / RATE / 100), so a cut is easy to locate."""
    times = np.arange(round(seconds * RATE), dtype=np.float32) / RATE / 100
    return AudioTrack(np.repeat(times[None], channels, axis=0), RATE)


def plan(**changes: object) -> Plan:
    base = dict(prompt="p", seed=0, native_width=64, native_height=64, native_frames=41, native_fps=8,
                output_width=64, output_height=64, output_frames=120, output_fps=24, num_inference_steps=2,
                guidance_scale=1.0)
    return Plan(**(base | changes))  # type: ignore[arg-type]


def test_segments_are_exact_and_padded_with_silence() -> None:
    track = ramp(2.0)
    piece = track.segment(1.5, 1.0)
    assert piece.samples.shape == (2, RATE)
    assert piece.samples[0, 0] == pytest.approx(1.5 / 100)
    assert (piece.samples[:, RATE // 2 :] == 0).all()  # past the track's end: silence


def test_a_new_part_sounds_from_its_first_delivered_frame_for_its_length() -> None:
    track = ramp(5.2)
    plain = part_sound(track, plan(), loop=False)
    assert plain.duration_s == pytest.approx(5.0) and plain.samples[0, 0] == 0
    # An extension: 8 native anchor frames (1 s at 8 fps) and one dropped output frame come first.
    extended = part_sound(track, plan(native_frames=49, head_trim=8, drop_first=True), loop=False)
    assert extended.duration_s == pytest.approx(5.0)
    assert extended.samples[0, 0] == pytest.approx((1.0 + 5.0 / 120) / 100, abs=1e-4)


def test_a_loops_sound_runs_on_into_its_start() -> None:
    track = ramp(5.5)
    looped = part_sound(track, plan(), loop=True)
    assert looped.duration_s == pytest.approx(5.0)
    # At the loop point the start is (almost) what followed the end: the track ran on past 5 s.
    assert looped.samples[0, 0] == pytest.approx(5.0 / 100, abs=1e-4)
    fade = round(LOOP_CROSSFADE_S * RATE)
    assert looped.samples[0, fade] == pytest.approx(fade / RATE / 100, abs=1e-4)


def test_joined_sound_takes_the_first_tracks_rate_and_channels(tmp_path: Path) -> None:
    mono = AudioTrack(np.full((1, 16000), 0.25, dtype=np.float32), 16000)
    joined = concatenate([ramp(1.0), mono])
    assert (joined.sample_rate, joined.channels) == (RATE, 2)
    assert joined.duration_s == pytest.approx(2.0)
    assert joined.samples[:, -10:] == pytest.approx(0.25)

    frames = iter(np.zeros((24, 64, 64, 3), dtype=np.uint8))
    tone = np.sin(np.arange(RATE, dtype=np.float32) * 2 * np.pi * 440 / RATE)[None] * 0.5
    encode_frames(frames, tmp_path / "tone.mp4", width=64, height=64, fps=24, total=24,
                  audio=AudioTrack(np.repeat(tone, 2, axis=0).astype(np.float32), RATE))
    probed = probe_audio(tmp_path / "tone.mp4")
    assert probed is not None and (probed.codec, probed.sample_rate, probed.channels) == ("aac", RATE, 2)
    assert abs(probed.duration_s - 1.0) < 0.1
    back = read_audio(tmp_path / "tone.mp4")
    assert back is not None and np.corrcoef(back.samples[0, 2000:20000], tone[0, 2000:20000])[0, 1] > 0.99
    padded = clip_sound(tmp_path / "tone.mp4", 2.0, 16000, 1)  # past its sound (AAC ends within a frame): silence
    assert padded.samples.shape == (1, 32000) and (padded.samples[:, 17000:] == 0).all()
