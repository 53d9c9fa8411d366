"""Video edits (modify, reframe, add audio): what a request's source may be, how long, and what the output is.

Pure rules, shared by submission (the API process, for a source it can see: an earlier generation, an
upload) and the worker (for every source, once it has the file). What happens to the pixels is
``engine/edit.py``'s.

* **Source**: an http(s) URL (fetched by the worker through ``net/fetch``), ``upload:<id>`` (a video the
  caller posted to ``POST /uploads``), or ``generation:<id>`` (a completed generation of the caller; a
  dialect turns this server's own file URLs into these). MP4, MOV or WebM, sniffed from the bytes.
* **Length** as Luma states it: modify up to 10 s on ``ray-2`` (15 s on ``ray-flash-2``), reframe up to 30 s.
  Add audio: up to :data:`ADD_AUDIO_MAX_S`, and its output is the source's own size and length.
* **Output**: modify keeps the source's aspect (its exact width:height) and length; reframe keeps its length
  at the request's aspect ratio; both at the source's *resolution class* (its short side snapped to the
  nearest of 540p, 720p, 1080p, 4k), unless the edit names a ``resolution``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dreamreel.core.errors import InvalidRequest
from dreamreel.core.request import (
    MAX_EDIT_S,
    AddAudioEdit,
    AspectRatio,
    GenerationRequest,
    ModifyEdit,
    ReframeEdit,
    Resolution,
    delivered_size,
    nearest_format,
)

GENERATION_SCHEME = "generation:"
"""``generation:<id>``: a completed generation of the caller as an edit's source."""

MODIFY_MAX_S: dict[str, float] = {"ray-2": 10.0, "ray-flash-2": 15.0}
REFRAME_MAX_S = float(MAX_EDIT_S)
ADD_AUDIO_MAX_S = 10.0
"""The longest clip sound is added to: one model pass in real time (LTX-2 makes 257 frames, 10.7 s at 24 fps, in
one pass; sound cannot be slowed the way a longer clip's frames are sampled sparser)."""
MAX_SOURCE_BYTES = 100 * 1024 * 1024
"""A source video larger than this is refused while it streams in."""
MAX_SOURCE_SIDE = 4096
MAX_SOURCE_PIXELS = 3840 * 2160
"""A source larger than 4k (pixels per frame, or either side) is refused from its header, before decoding."""
MIN_WINDOW_SIDE = 16
"""A reframe's source window must be at least this many output pixels on each side."""
LENGTH_TOLERANCE_S = 0.05
"""Containers round durations; a '10 s' clip may say 10.04 s."""


@dataclass(frozen=True)
class SourceFacts:
    """What an edit needs to know of its source video, read from its header (``media/video_source.py``)."""

    width: int
    height: int
    fps: float
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class Window:
    """Where the source sits in a reframe's output canvas: pixels ``x0 <= x < x1``, ``y0 <= y < y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def scaled(self, sx: float, sy: float) -> Window:
        """This window in a canvas ``sx`` x ``sy`` times the size (e.g. the model's native canvas)."""
        return Window(round(self.x0 * sx), round(self.y0 * sy), round(self.x1 * sx), round(self.y1 * sy))


def edit_field(request: GenerationRequest) -> str:
    """The name a client sees for the edit's source (the dialects' ``media.url``)."""
    return "media.url"


def max_source_s(request: GenerationRequest) -> float:
    """The longest source ``request``'s edit takes on its model."""
    if isinstance(request.edit, ReframeEdit):
        return REFRAME_MAX_S
    if isinstance(request.edit, AddAudioEdit):
        return ADD_AUDIO_MAX_S
    return MODIFY_MAX_S.get(request.model, min(MODIFY_MAX_S.values()))


def resolution_class(width: int, height: int) -> Resolution:
    """The Ray resolution whose short side is nearest the source's (on a log scale): 544 -> 540p, 1440 -> 1080p."""
    return nearest_format(width, height)[1]


def check_source(request: GenerationRequest, facts: SourceFacts) -> None:
    """Refuse a source that is not a usable video for ``request``'s edit (``InvalidRequest``, naming ``media``)."""
    field = edit_field(request)
    if facts.width <= 0 or facts.height <= 0 or facts.frames <= 0 or facts.fps <= 0:
        raise InvalidRequest(f"{field}: the source has no decodable video stream", field=field)
    if max(facts.width, facts.height) > MAX_SOURCE_SIDE or facts.width * facts.height > MAX_SOURCE_PIXELS:
        raise InvalidRequest(f"{field}: the source is {facts.width}x{facts.height}; the largest accepted is 4k "
                             f"({MAX_SOURCE_PIXELS} pixels, sides up to {MAX_SOURCE_SIDE})", field=field)
    limit = max_source_s(request)
    if facts.duration_s > limit + LENGTH_TOLERANCE_S:
        kind = "reframe" if isinstance(request.edit, ReframeEdit) else "add_audio" if isinstance(
            request.edit, AddAudioEdit) else f"modify on {request.model}"
        raise InvalidRequest(f"{field}: the source is {facts.duration_s:.1f} s long; {kind} takes at most "
                             f"{limit:g} s", field=field)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def output_of(request: GenerationRequest, facts: SourceFacts) -> GenerationRequest:
    """``request`` with its output fields set from the source: exact ``size``, the ``aspect_ratio`` and
    ``resolution`` that label it, and ``duration_s`` (the source's length, rounded up, for billing).
    Raises ``InvalidRequest`` for an unusable source or a reframe window outside the canvas."""
    edit = request.edit
    if edit is None:
        return request
    check_source(request, facts)
    resolution = edit.resolution or resolution_class(facts.width, facts.height)
    if isinstance(edit, AddAudioEdit):  # the picture is the source's own
        size = (_even(facts.width), _even(facts.height))
        aspect = nearest_format(*size)[0]
    elif isinstance(edit, ModifyEdit):
        scale = resolution.short_side / min(facts.width, facts.height)
        size = (_even(facts.width * scale), _even(facts.height * scale))
        aspect = nearest_format(*size)[0]
    else:
        aspect = request.aspect_ratio
        size = delivered_size(aspect, resolution)
        reframe_window(edit, size, (facts.width, facts.height))
    duration = min(MAX_EDIT_S, max(1, math.ceil(facts.duration_s - LENGTH_TOLERANCE_S)))
    return request.model_copy(update={"size": size, "aspect_ratio": aspect, "resolution": resolution,
                                      "duration_s": duration})


def provisional_output(request: GenerationRequest) -> GenerationRequest:
    """``request`` with output fields for a source not seen yet (a URL the worker fetches): the longest length
    its edit takes (what is reserved; the charge is what is delivered) at the asked or the request's
    resolution; the worker decides the real output from the file."""
    edit = request.edit
    if edit is None:
        return request
    resolution = edit.resolution or request.resolution
    aspect = request.aspect_ratio if isinstance(edit, ReframeEdit) else AspectRatio.LANDSCAPE
    return request.model_copy(update={"size": None, "aspect_ratio": aspect, "resolution": resolution,
                                      "duration_s": math.ceil(max_source_s(request))})


def reframe_window(edit: ReframeEdit, canvas: tuple[int, int], source: tuple[int, int]) -> Window:
    """The box (output pixels) the source is resized into, from Luma's placement fields.

    ``x_start/x_end`` and ``y_start/y_end`` give the box (a pair alone: the other side follows the source's
    aspect, centred); else ``resized_width/height`` give its size (one alone: the other follows the aspect)
    and ``grid_position_x/y`` its top-left corner (absent: centred); with none the source is centred at the
    largest size that fits. The box must lie inside the canvas and be at least :data:`MIN_WINDOW_SIDE` px."""
    width, height = canvas
    src_w, src_h = source
    aspect = src_w / src_h

    def pair(start: int | None, end: int | None, name: str) -> tuple[int, int] | None:
        if start is None and end is None:
            return None
        if start is None or end is None:
            raise InvalidRequest(f"{name}_start and {name}_end go together", field=f"{name}_start")
        if end <= start:
            raise InvalidRequest(f"{name}_end must be greater than {name}_start", field=f"{name}_end")
        return start, end

    xs, ys = pair(edit.x_start, edit.x_end, "x"), pair(edit.y_start, edit.y_end, "y")
    if xs is not None or ys is not None:
        box_w = xs[1] - xs[0] if xs else round((ys[1] - ys[0]) * aspect)  # type: ignore[index]
        box_h = ys[1] - ys[0] if ys else round((xs[1] - xs[0]) / aspect)  # type: ignore[index]
        x0 = xs[0] if xs else (width - box_w) // 2
        y0 = ys[0] if ys else (height - box_h) // 2
    else:
        if edit.resized_width is not None or edit.resized_height is not None:
            box_w = edit.resized_width if edit.resized_width is not None else round(edit.resized_height * aspect)  # type: ignore[operator]
            box_h = edit.resized_height if edit.resized_height is not None else round(box_w / aspect)
        else:
            scale = min(width / src_w, height / src_h)
            box_w, box_h = min(width, round(src_w * scale)), min(height, round(src_h * scale))
        x0 = edit.grid_position_x if edit.grid_position_x is not None else (width - box_w) // 2
        y0 = edit.grid_position_y if edit.grid_position_y is not None else (height - box_h) // 2
    window = Window(x0, y0, x0 + box_w, y0 + box_h)
    if window.width < MIN_WINDOW_SIDE or window.height < MIN_WINDOW_SIDE:
        raise InvalidRequest(f"the source's box is {window.width}x{window.height} px; it must be at least "
                             f"{MIN_WINDOW_SIDE} px on each side", field="resized_width")
    if window.x0 < 0 or window.y0 < 0 or window.x1 > width or window.y1 > height:
        raise InvalidRequest(
            f"the source's box ({window.x0},{window.y0})-({window.x1},{window.y1}) does not fit the {width}x{height} "
            "output", field="grid_position_x")
    return window
