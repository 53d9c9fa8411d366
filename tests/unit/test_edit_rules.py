"""Video edits' pure rules: the request shape, the source's caps, the output, the reframe window, the paste."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dreamreel.core.capabilities import check_supported
from dreamreel.core.edits import SourceFacts, Window, output_of, provisional_output, reframe_window
from dreamreel.core.errors import InvalidRequest, NotSupported
from dreamreel.core.metering import cost_milli, delivered_cost
from dreamreel.core.request import AspectRatio, GenerationRequest, ModifyEdit, ModifyMode, ReframeEdit, Resolution
from dreamreel.media.reframe import WindowPaste


def _modify(**edit) -> GenerationRequest:
    return GenerationRequest(prompt="", edit=ModifyEdit(source="generation:g", **edit))


def _reframe(aspect: AspectRatio = AspectRatio.SQUARE, **edit) -> GenerationRequest:
    return GenerationRequest(prompt="", aspect_ratio=aspect, edit=ReframeEdit(source="generation:g", **edit))


def test_modes_rank_from_adhere_to_reimagine() -> None:
    assert [m.rank for m in ModifyMode] == list(range(9))
    assert ModifyMode("adhere_1").rank == 0 and ModifyMode("reimagine_3").rank == 8


def test_an_edit_may_have_no_prompt_but_a_clip_must() -> None:
    assert _modify().prompt == ""
    with pytest.raises(ValidationError, match="prompt must contain text"):
        GenerationRequest(prompt="  ")


def test_an_edit_takes_no_keyframes_or_loop_and_may_be_30_s() -> None:
    with pytest.raises(ValidationError, match="no keyframes and no loop"):
        GenerationRequest(prompt="x", loop=True, edit=ModifyEdit(source="generation:g"))
    assert _modify().model_copy(update={"duration_s": 30}).duration_s == 30
    with pytest.raises(ValidationError, match="at most 20"):
        GenerationRequest(prompt="x", duration_s=25)


def test_modify_keeps_the_source_aspect_and_length_at_its_resolution_class() -> None:
    request = output_of(_modify(), SourceFacts(width=640, height=480, fps=30, frames=93))
    assert request.output_size == (720, 540)  # short side 480 -> 540p, 4:3 kept exactly
    assert request.resolution is Resolution.P540 and request.aspect_ratio is AspectRatio.STANDARD
    assert request.duration_s == 4  # 3.1 s, rounded up for the reservation
    wide = output_of(_modify(), SourceFacts(width=1920, height=1080, fps=24, frames=120))
    assert wide.output_size == (1920, 1080) and wide.resolution is Resolution.P1080
    asked = output_of(_modify(resolution=Resolution.P720), SourceFacts(width=1920, height=1080, fps=24, frames=120))
    assert asked.output_size == (1280, 720)


def test_reframe_keeps_the_length_at_the_new_aspect() -> None:
    request = output_of(_reframe(AspectRatio.PORTRAIT), SourceFacts(width=1280, height=720, fps=24, frames=48))
    assert request.output_size == (720, 1280) and request.duration_s == 2


@pytest.mark.parametrize(("request_", "facts", "message"), [
    (_modify(), SourceFacts(1280, 720, 24, 11 * 24), "modify on ray-2 takes at most 10 s"),
    (_reframe(), SourceFacts(1280, 720, 24, 31 * 24), "reframe takes at most 30 s"),
    (_modify(), SourceFacts(5000, 2000, 24, 24), "the largest accepted is 4k"),
    (_modify(), SourceFacts(640, 360, 0, 0), "no decodable video stream"),
])
def test_unusable_sources_are_refused(request_: GenerationRequest, facts: SourceFacts, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        output_of(request_, facts)


def test_flash_modify_takes_15_s() -> None:
    flash = GenerationRequest(prompt="", model="ray-flash-2", edit=ModifyEdit(source="generation:g"))
    assert output_of(flash, SourceFacts(1280, 720, 24, 14 * 24)).duration_s == 14


def test_a_url_source_reserves_its_longest_length() -> None:
    request = provisional_output(GenerationRequest(prompt="", edit=ReframeEdit(source="https://example.com/v.mp4")))
    assert request.duration_s == 30 and request.size is None


def test_window_defaults_to_centred_largest_fit() -> None:
    edit = ReframeEdit(source="generation:g")
    assert reframe_window(edit, (540, 960), (960, 540)) == Window(0, 328, 540, 632)
    assert reframe_window(edit, (960, 540), (540, 540)) == Window(210, 0, 750, 540)


def test_window_from_box_size_and_position() -> None:
    box = ReframeEdit(source="s", x_start=10, x_end=210, y_start=20, y_end=132)
    assert reframe_window(box, (540, 540), (960, 540)) == Window(10, 20, 210, 132)
    sized = ReframeEdit(source="s", resized_width=480, grid_position_x=0, grid_position_y=5)
    assert reframe_window(sized, (540, 540), (960, 540)) == Window(0, 5, 480, 275)


@pytest.mark.parametrize("edit", [
    ReframeEdit(source="s", x_start=10),
    ReframeEdit(source="s", x_start=100, x_end=50),
    ReframeEdit(source="s", resized_width=800),
    ReframeEdit(source="s", resized_width=8),
    ReframeEdit(source="s", grid_position_x=-5),
])
def test_bad_windows_are_refused(edit: ReframeEdit) -> None:
    with pytest.raises(InvalidRequest):
        reframe_window(edit, (540, 540), (960, 540))


def test_every_family_edits_without_its_needed_images() -> None:
    families = {"ray-2": "wan-i2v"}
    check_supported(_modify(), families)
    with pytest.raises(NotSupported, match="needs start_image"):
        check_supported(GenerationRequest(prompt="x"), families)


def test_an_edit_is_charged_its_delivered_seconds() -> None:
    request = provisional_output(GenerationRequest(prompt="", edit=ModifyEdit(source="https://e.com/v.mp4")))
    assert delivered_cost(request, 960, 540, 72, 24) == cost_milli(960, 540, 3)
    assert delivered_cost(GenerationRequest(prompt="x", duration_s=5), 960, 540, 240, 24) == 1000


def test_window_paste_keeps_the_source_and_joins_the_border() -> None:
    frame = np.full((64, 96, 3), 100, np.uint8)
    source = np.full((32, 32, 3), 140, np.uint8)
    window = Window(32, 16, 64, 48)
    out = WindowPaste(96, 64, window, fade_px=8)(frame, source)
    assert (out[16:48, 32:64] == 140).all()
    assert out[30, 31, 0] > 135 and out[30, 24, 0] == 100  # next to the border: the source's level; 8 px out: none
    steps = np.abs(np.diff(out[30, :, 0].astype(int)))
    assert steps.max() <= 10  # no step across the border
    assert (out[:8] == 100).all()  # outside the band: untouched
