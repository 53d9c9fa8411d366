"""A server on the tiny LTX-2 (video with sound), through the unmodified ``lumaai`` SDK: text-to-video, a start
image and an extension each deliver an MP4 of the asked size, rate and length with an AAC track of the clip's
length; ``add_audio`` delivers a new generation whose picture is the source's, frame for frame, with new sound."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import lumaai
import numpy as np
import pytest
from lumaai import LumaAI
from tests.acceptance.imagehost import data_uri, png_bytes
from tests.conftest import ServerProcess

from dreamreel.media.audio import read_audio
from dreamreel.media.probe import probe_audio, probe_mp4

SOUND_TOLERANCE_S = 0.1
"""AAC codes whole 1024-sample frames, so a track may run up to one frame (43 ms at 24 kHz) past the picture."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from dreamreel.engine.tiny_ltx2 import build_tiny_ltx2

    model_dir = build_tiny_ltx2(tmp_path_factory.mktemp("models") / "tiny-ltx2")
    server = ServerProcess(tmp_path_factory.mktemp("ltx2") / "data", model_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def luma(server: ServerProcess) -> LumaAI:
    return LumaAI(auth_token="any", base_url=f"{server.url}/dream-machine/v1", max_retries=0)


def finish(luma: LumaAI, generation_id: str, server: ServerProcess, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = luma.generations.get(generation_id)
        if generation.state in ("completed", "failed"):
            assert generation.state == "completed", (generation.failure_reason, server.log_path.read_text()[-3000:])
            return generation
        time.sleep(0.2)
    raise AssertionError(f"{generation_id} did not finish")


def download(url: str, path: Path) -> Path:
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200
    path.write_bytes(response.content)
    return path


def video_packets(path: Path) -> list[bytes]:
    """The coded pictures of ``path``'s video stream: equal lists are equal frames, without decoding them."""
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(video=0) if packet.size]


def check_clip(path: Path, *, frames: int, size: tuple[int, int] = (960, 540)) -> None:
    """The MP4 has exactly the asked picture and an AAC track as long as it (stereo, the vocoder's 24 kHz)."""
    video = probe_mp4(path)
    assert (video.width, video.height, video.fps, video.frames) == (*size, 24.0, frames)
    sound = probe_audio(path)
    assert sound is not None, "the clip has no audio stream"
    assert (sound.codec, sound.sample_rate, sound.channels) == ("aac", 24000, 2)
    assert abs(sound.duration_s - frames / 24) <= SOUND_TOLERANCE_S, (sound.duration_s, frames / 24)


@pytest.fixture(scope="module")
def made(luma: LumaAI, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A text-to-video clip, then a clip from a start image, both submitted before either is awaited."""
    text = luma.generations.create(prompt="a red ball bounces on a drum", model="ray-2", resolution="540p",
                                   aspect_ratio="16:9", duration="5s")
    image = luma.generations.create(prompt="waves roll onto the shore", model="ray-2", resolution="540p",
                                    aspect_ratio="16:9", duration="5s",
                                    keyframes={"frame0": {"type": "image", "url": data_uri(png_bytes((30, 90, 200)))}})
    folder = tmp_path_factory.mktemp("clips")
    text, image = finish(luma, text.id, server), finish(luma, image.id, server)
    return {"text": text, "image": image, "text.mp4": download(text.assets.video, folder / "text.mp4"),
            "image.mp4": download(image.assets.video, folder / "image.mp4")}


def test_text_and_start_image_clips_carry_sound_of_their_length(made: dict) -> None:
    check_clip(made["text.mp4"], frames=120)
    check_clip(made["image.mp4"], frames=120)
    sound = read_audio(made["text.mp4"])
    assert sound is not None and float(abs(sound.samples).max()) > 1e-3, "the track is silent"


def test_extension_carries_its_source_sound_then_its_own(luma: LumaAI, server: ServerProcess, made: dict,
                                                          tmp_path: Path) -> None:
    extended = luma.generations.create(prompt="the ball keeps bouncing", model="ray-2", resolution="540p",
                                       aspect_ratio="16:9", duration="5s",
                                       keyframes={"frame0": {"type": "generation", "id": made["text"].id}})
    path = download(finish(luma, extended.id, server).assets.video, tmp_path / "extended.mp4")
    check_clip(path, frames=240)
    source, delivered = read_audio(made["text.mp4"]), read_audio(path)
    assert source is not None and delivered is not None
    # The source's own sound plays first: coded as AAC twice (the tiny model's sound is noise-like, which AAC
    # codes loosely), so alike rather than equal; an unrelated track correlates near 0.
    head = round(4.5 * 24000)
    assert np.corrcoef(delivered.samples[0, :head], source.samples[0, :head])[0, 1] > 0.6


def test_add_audio_keeps_the_picture_and_adds_sound(luma: LumaAI, server: ServerProcess, made: dict,
                                                    tmp_path: Path) -> None:
    source = made["text"]
    added = luma.generations.audio(source.id, generation_type="add_audio", prompt="drum beats and rain",
                                   negative_prompt="speech")
    assert added.id != source.id
    assert added.request.generation_type == "add_audio" and added.request.prompt == "drum beats and rain"
    assert added.request.negative_prompt == "speech"
    done = finish(luma, added.id, server)
    path = download(done.assets.video, tmp_path / "with-sound.mp4")
    check_clip(path, frames=120)
    assert video_packets(path) == video_packets(made["text.mp4"]), "the picture is not the source's, bit for bit"
    before, after = read_audio(made["text.mp4"]), read_audio(path)
    assert before is not None and after is not None
    assert abs(before.samples - after.samples[:, : before.samples.shape[1]]).max() > 1e-3, "the sound is the old one"


def test_add_audio_refuses_an_unfinished_source_and_anothers(luma: LumaAI, server: ServerProcess) -> None:
    queued = luma.generations.create(prompt="a kite drifts", model="ray-2", resolution="540p", duration="5s")
    with pytest.raises(lumaai.APIStatusError) as caught:
        luma.generations.audio(queued.id, generation_type="add_audio", prompt="wind")
    assert caught.value.status_code == 409, caught.value.body
    with pytest.raises(lumaai.NotFoundError):
        luma.generations.audio("00000000-0000-0000-0000-000000000000", prompt="wind")
    luma.generations.delete(queued.id)
