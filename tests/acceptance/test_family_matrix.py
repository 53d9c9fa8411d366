"""Every family × every control it supports, through the worker: a tiny model of each family (those of public
checkpoints built from their real configs), one models config serving them all, and for each control a job
claimed and run by a real ``Worker`` on a real store, its MP4 read back at the requested size, frame rate and
length (and, for a model that makes sound, with an AAC track as long as the clip). Every control a family
lacks is the documented 422 naming the request's field.

Small on purpose (256x144, 1 s), so the whole matrix fits the suite's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.acceptance.imagehost import data_uri, png_bytes

from dreamreel.config import Settings
from dreamreel.core.capabilities import FAMILY_CONTROLS, FAMILY_NEEDS
from dreamreel.core.conditioning import Control
from dreamreel.core.errors import NotSupported
from dreamreel.core.generation import Generation, State
from dreamreel.core.request import (
    AddAudioEdit,
    AspectRatio,
    GenerationKeyframe,
    GenerationRequest,
    ImageKeyframe,
    Keyframes,
    ModifyEdit,
    ModifyMode,
    ReframeEdit,
)
from dreamreel.core.service import GenerationService
from dreamreel.engine.tiny_real import build_from_real_config
from dreamreel.files import LocalFiles
from dreamreel.media.probe import probe_audio, probe_mp4
from dreamreel.store.sqlite import SQLiteStore
from dreamreel.worker.loop import Worker

FAMILY_CHECKPOINTS = {
    "ltx-condition": "ltx-video-0.9.5-2b",
    "ltx2": "ltx2",
    "wan-t2v": "wan2.1-t2v-1.3b",
    "wan-i2v": "wan2.1-i2v-14b-720p",
    "wan-flf2v": "wan2.1-flf2v-14b-720p",
    "wan-vace": "wan2.1-vace-1.3b",
    "wan22-ti2v": "wan2.2-ti2v-5b",
    "wan22-t2v": "wan2.2-t2v-a14b",
    "wan22-i2v": "wan2.2-i2v-a14b",
}
"""The public checkpoint whose real config each family's tiny model is built from."""

SIZE = (256, 144)
START = data_uri(png_bytes((40, 90, 200), size=(256, 144)))
END = data_uri(png_bytes((210, 60, 40), size=(256, 144)))


@dataclass
class Rig:
    service: GenerationService
    worker: Worker
    files: LocalFiles

    def run(self, request: GenerationRequest) -> Generation:
        generation = self.service.submit(request, owner="matrix", dialect="luma")
        assert self.worker.run_once()
        done = self.service.get(generation.id, owner="matrix")
        assert done.state is State.COMPLETED, (request, done.failure_reason)
        return done


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("family-matrix")
    blocks = []
    for family, checkpoint in FAMILY_CHECKPOINTS.items():
        model_dir = build_from_real_config(checkpoint, root / "models" / checkpoint, seed=0)
        blocks.append(f'[models.{family}]\nfamily = "{family}"\npath = "{model_dir}"\nsteps = 2\n')
    config = root / "models.toml"
    config.write_text('default = "ltx-condition"\n' + "\n".join(blocks))
    settings = Settings(data_dir=root / "data", models_config=config, max_loaded_models=16,
                        preview_interval_seconds=0, allow_private_urls=True)
    catalog = settings.catalog()
    store = SQLiteStore(root / "data" / "jobs.db")
    files = LocalFiles(settings.resolved_storage_dir)
    service = GenerationService(store, files, families=catalog.families)
    yield Rig(service, Worker(settings, store=store, catalog=catalog), files)


def needs_start(family: str) -> bool:
    return any(Control.START_IMAGE in group for group in FAMILY_NEEDS.get(family, ()))


def clip(family: str, **fields: object) -> GenerationRequest:
    keyframes = Keyframes(frame0=ImageKeyframe(url=START)) if needs_start(family) else None
    return GenerationRequest(**{"prompt": "a red ball bounces on green grass", "model": family, "size": SIZE,
                                "duration_s": 1, "seed": 5, "keyframes": keyframes, **fields})


def requests(family: str, source: Generation) -> dict[Control, GenerationRequest]:
    """One request per control, ``source`` a completed clip of the family for the ones that take a clip."""
    start = ImageKeyframe(url=START)
    flf = family == "wan-flf2v"  # it cannot generate without a last frame (or a loop)
    return {
        Control.START_IMAGE: clip(family, keyframes=Keyframes(frame0=start, frame1=ImageKeyframe(url=END) if flf
                                                             else None)),
        Control.END_IMAGE: clip(family, keyframes=Keyframes(
            frame0=start if Control.START_IMAGE in FAMILY_CONTROLS[family] else None, frame1=ImageKeyframe(url=END))),
        Control.EXTEND: clip(family, keyframes=Keyframes(frame0=GenerationKeyframe(id=source.id))),
        Control.REVERSE_EXTEND: clip(family, keyframes=Keyframes(frame1=GenerationKeyframe(id=source.id))),
        Control.LOOP: clip(family, loop=True),
        Control.MODIFY: GenerationRequest(prompt="at night", model=family, seed=5, edit=ModifyEdit(
            source=f"generation:{source.id}", mode=ModifyMode.FLEX_1)),
        Control.REFRAME: GenerationRequest(prompt="wider", model=family, seed=5, aspect_ratio=AspectRatio.SQUARE,
                                           edit=ReframeEdit(source=f"generation:{source.id}")),
        Control.ADD_AUDIO: GenerationRequest(prompt="wind", model=family, seed=5,
                                             edit=AddAudioEdit(source=f"generation:{source.id}")),
    }


def check_mp4(rig: Rig, generation: Generation, *, sound: bool) -> None:
    path = rig.files.generation_dir(generation.id) / "video.mp4"
    video = probe_mp4(path)
    width, height = generation.request.output_size
    assert (video.width, video.height, round(video.fps)) == (width, height, 24), generation.request
    assert video.frames == generation.video_info.frames
    expected_s = generation.video_info.frames / 24
    assert abs(video.duration_s - expected_s) < 0.1
    audio = probe_audio(path)
    if sound:
        assert audio is not None and audio.codec == "aac", generation.request
        assert abs(audio.duration_s - video.duration_s) < 0.1, (audio, video)
    else:
        assert audio is None


@pytest.mark.parametrize("family", list(FAMILY_CHECKPOINTS))
def test_every_control_a_family_supports_makes_its_clip_and_the_rest_are_refused(rig: Rig, family: str) -> None:
    supported = FAMILY_CONTROLS[family]
    sound = Control.ADD_AUDIO in supported
    source = rig.run(clip(family, keyframes=Keyframes(frame0=ImageKeyframe(url=START), frame1=ImageKeyframe(
        url=END)) if family == "wan-flf2v" else clip(family).keyframes))  # text (or the images it needs)
    check_mp4(rig, source, sound=sound)
    assert source.video_info.frames == 24 and source.request.output_size == SIZE
    made: dict[Control, Generation] = {}
    for control, request in requests(family, source).items():
        if control in supported:
            done = rig.run(request)
            check_mp4(rig, done, sound=sound)
            made[control] = done
        else:
            with pytest.raises(NotSupported) as refused:
                rig.service.submit(request, owner="matrix", dialect="luma")
            assert refused.value.status_code == 422 and refused.value.field == control.field, (family, control)
    if Control.EXTEND in made:  # an extension is the source's clip followed by the new part
        assert made[Control.EXTEND].video_info.frames > source.video_info.frames
    if Control.REFRAME in made:
        width, height = made[Control.REFRAME].request.output_size
        assert width == height
    assert set(made) == supported
