"""Request -> Plan: the native size the model generates, its conditions and the exact output asked for.

The plan's value types (``NativeGrid``, ``Condition``, ``Plan``) and the planner that fills them. Pure
arithmetic, no torch, so it is unit-tested exhaustively and usable from the API process.

Conditioning layout on the native clip of ``N`` frames (``k = frame_multiple + 1`` overlap frames):

* image at frame0 -> condition at index 0; image at frame1 -> index ``N - 1``;
* generation at frame0 (extend) -> the source's last ``k`` frames at index 0; the new part starts at
  native ``k - 1`` (the model's copy of the source's last frame, used as the resampling anchor and not
  delivered); generation at frame1 (reverse-extend) -> the source's first ``k`` frames at ``N - k``;
* loop with a frame0 image -> the image at 0 *and* ``N - 1``: the clip is a closed cycle whose last native
  frame (the image again) is the anchor, not delivered, so playback wraps onto the image seamlessly;
* loop without one -> ``loop_blend`` extra frames are generated and the tail is cross-faded into the head
  (``media.loop``), then closed the same way;
* extend / reverse-extend / image keyframes -> the new part's end that meets a source clip or an image is
  moved onto the source's joint frame or the image, the correction fading over ``JOINT_FADE_LATENT_FRAMES``
  latent frames (``joint_fade``, ``media.seam``); a loop on a start image is moved onto it at both ends;
* loop with a frame0 image on a model that cannot pin its last frame (``pin_last_frame=False``: Wan
  image-to-video, or a model whose ``dreamreel.json`` says its end keyframes do not land) -> the image at
  0 only, and the clip's last ``loop_blend`` frames dissolve into its first (``loop_fade_to_start``).

A camera concept, or a listed camera phrase in the prompt (``core.concepts.requested_camera``), on a
model with a virtual camera (``virtual_camera``) also becomes ``camera_move``,
the move ``media.camera`` makes over the new part, where every pinned end of the clip still shows the
whole frame: a keyframe must stay where it was given (a moving window would crop and shift the image),
an extension must meet its source, and a loop must end where it began. So a zoom in may start on an
image or an extended clip, a zoom out may end on one, and every other case keeps the concept as prompt
words only (a loop pins both ends, so it never gets a virtual camera). The plan's prompt is the
one the model receives: concepts become caption clauses (``core.concepts.model_prompt``), and a clip
whose move the virtual camera makes asks the model for a still camera.

**Size.** The delivered size is ``request.output_size``: the exact ``size`` a caller named (OpenAI's
``1280x720``, ``640x480``, any aspect from 1:4 to 4:1), else the Ray size of ``aspect_ratio`` and
``resolution``. The native size keeps the model's short side and grid (:func:`native_size`); its long side
follows the delivered size's own aspect (a Ray format's ratio, or the explicit width/height), so the frames
scaled to the output size are stretched only by the grid's rounding, as they always were for Ray formats.

**Length.** ``output_frames`` is exactly ``duration_s * 24`` for any whole ``duration_s`` (1..20). The model
makes the new part in *one pass* of at most ``max_frames`` native frames (:func:`native_frame_count`); a
longer clip is that pass resampled in time, its motion slowed (the embedded model makes 5 s a pass at 8 fps,
so its 20 s plays at a quarter speed; LTX-Video's 257 frames at 24 fps make 10.7 s). Chained passes (each an
extension of the last) would keep the motion's speed but multiply the cost, drift further from the prompt
at each joint, and split keyframes, loops, the virtual camera, progress and previews over several runs; a
caller who wants a longer scene extends a clip (``keyframes.frame0`` = a generation), which is exactly that
chain with a prompt per part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dreamreel.core.concepts import model_prompt, requested_camera
from dreamreel.core.request import (
    AspectRatio,
    GenerationKeyframe,
    GenerationRequest,
    ImageKeyframe,
    Resolution,
    delivered_size,
)
from dreamreel.media.camera import shows_whole_frame


@dataclass(frozen=True)
class NativeGrid:
    """What sizes a loaded model can generate natively.

    A backend reports this after loading, because it depends on the checkpoint's VAE and
    transformer patching (e.g. LTX-Video: 32 px and 8 frames; the tiny test model: less).
    """

    short_side: int
    """Preferred short side in pixels of the native clip (the long side follows the aspect ratio)."""
    size_multiple: int
    """Height and width must be multiples of this (VAE spatial ratio x transformer patch)."""
    frame_multiple: int
    """Native frame counts are ``frame_multiple * k + 1`` (the VAE's causal temporal ratio)."""
    fps: int
    """Frames per second the model was trained to produce."""
    max_frames: int = 257
    """Upper bound on native frames in one pass (memory)."""


@dataclass(frozen=True)
class Condition:
    """One conditioning item at a native frame index (an LTX ``LTXVideoCondition``, a Wan first/last frame).

    The pixels come from the request's keyframe ``slot``: an image (``num_frames == 1``) or, for a
    generation, ``num_frames`` frames of that clip sampled at the native fps: its *last* frames when the
    slot is ``frame0`` (extend), its *first* frames when it is ``frame1`` (reverse-extend).
    """

    slot: Literal["frame0", "frame1"]
    kind: Literal["image", "video"]
    frame_index: int
    num_frames: int = 1


@dataclass(frozen=True)
class Plan:
    """Everything a backend and the encoder need to make one clip, decided up front.

    The backend generates ``native_frames`` frames of ``native_width x native_height``;
    media/ then resamples them in time and space to the exact output the user asked for.
    """

    prompt: str
    seed: int
    native_width: int
    native_height: int
    native_frames: int
    native_fps: int
    output_width: int
    output_height: int
    output_frames: int
    output_fps: int
    num_inference_steps: int
    guidance_scale: float
    conditions: tuple[Condition, ...] = ()
    negative_prompt: str | None = None
    """What guidance steers away from (the request's ``negative_prompt``); None: the pipeline's default."""
    head_trim: int = 0
    """Native frames dropped from the start before resampling (the model's copy of an extended clip's
    tail, all but its last frame, which stays as the anchor the new part is resampled from)."""
    tail_trim: int = 0
    """Likewise at the end, for reverse-extend."""
    loop_blend: int = 0
    """Native frames of the tail cross-faded into the head (loop without a start image); the blended
    clip is then closed with its own first frame as the end anchor."""
    loop_fade_to_start: bool = False
    """With ``loop_blend``: a loop on a start image whose model cannot pin its last frame. The last
    ``loop_blend`` native frames dissolve into the first (``media.loop.fade_into_start``) instead of the
    tail being cross-faded into the head, so the clip still starts on the image; no extra frames."""
    drop_first: bool = False
    """The first resampled frame is an anchor duplicating the previous clip's last frame: not delivered."""
    drop_last: bool = False
    """The last resampled frame is an anchor duplicating the next frame played (the source clip's first,
    or the loop's own first): not delivered."""
    joint_fade: int = 0
    """Native frames over which the new part's end that meets a source clip (extend, reverse-extend) or a
    keyframe image is moved onto that clip's joint frame or the image, the correction fading out
    (``media.seam``)."""
    source_stride: int = 1
    """Output frames between source-clip frames sampled for a video condition (output fps / native fps)."""
    camera_move: str = ""
    """A camera concept's move made by a virtual camera over the new part (``media.camera``), or ``""``."""

    @property
    def resample_frames(self) -> int:
        """Frames the new part is resampled to, anchors included; ``output_frames`` are delivered."""
        return self.output_frames + int(self.drop_first) + int(self.drop_last)

    @property
    def output_duration_s(self) -> float:
        return self.output_frames / self.output_fps


OUTPUT_FPS = 24
"""Delivered clips are 24 fps (5 s = 120 frames, 9 s = 216), as Ray 2 delivers them."""

LOOP_BLEND_FRACTION = 0.25
"""Share of the clip cross-faded when a loop has no start image to close on."""


JOINT_FADE_LATENT_FRAMES = 2
"""How long the correction that joins an extension to its source, or a clip's end to its keyframe image,
fades: two latent frames (1 s on the embedded model's 8 fps, 0.67 s on LTX-Video's 24), long enough not to
show as a second step."""


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def frame_size(aspect: AspectRatio, short_side: int, multiple: int = 2) -> tuple[int, int]:
    """(width, height) with the given short side and aspect, both multiples of ``multiple``."""
    a, b = aspect.ratio
    if a >= b:
        return _round_to(short_side * a / b, multiple), _round_to(short_side, multiple)
    return _round_to(short_side, multiple), _round_to(short_side * b / a, multiple)


def output_size(aspect: AspectRatio, resolution: Resolution) -> tuple[int, int]:
    """The Ray format's delivered size (``core.request.delivered_size``); a request's own delivered size,
    explicit or not, is ``GenerationRequest.output_size`` (what metering bills too)."""
    return delivered_size(aspect, resolution)


def native_size(request: GenerationRequest, grid: NativeGrid) -> tuple[int, int]:
    """(width, height) the model renders ``request`` at: ``grid.short_side`` and the delivered size's aspect,
    both sides multiples of ``grid.size_multiple``. A Ray format keeps :func:`frame_size` of its aspect (the
    sizes the embedded model was trained at); an explicit size follows its own width/height, not the
    nearest Ray aspect, so e.g. 1:4 renders at 1:4."""
    if request.size is None:
        return frame_size(request.aspect_ratio, grid.short_side, grid.size_multiple)
    width, height = request.size
    short, multiple = grid.short_side, grid.size_multiple
    if width >= height:
        return _round_to(short * width / height, multiple), _round_to(short, multiple)
    return _round_to(short, multiple), _round_to(short * height / width, multiple)


def native_frame_count(duration_s: int, grid: NativeGrid) -> int:
    """Frames the model generates: ``frame_multiple * k + 1`` closest to duration x fps, capped at
    ``grid.max_frames`` (one pass; a longer clip is resampled from it: "Length" above)."""
    k = max(1, round(duration_s * grid.fps / grid.frame_multiple))
    k = min(k, (grid.max_frames - 1) // grid.frame_multiple)
    return grid.frame_multiple * k + 1


def overlap_frames(grid: NativeGrid) -> int:
    """Source frames a clip condition carries: one latent frame past the first (the LTX condition
    pipeline needs at least two latent frames for a clip placed after index 0)."""
    return grid.frame_multiple + 1


def plan_generation(
    request: GenerationRequest, grid: NativeGrid, *, seed: int, steps: int, guidance_scale: float,
    pin_last_frame: bool = True, virtual_camera: bool = False,
) -> Plan:
    """The plan for ``request`` on ``grid``. ``pin_last_frame``: the model can condition its last native frame
    on an image (``core.capabilities.pins_last_frame`` of its family), so a loop on a start image closes
    on the image; without it such a loop is cross-faded like one without a start image. ``virtual_camera``:
    the model's ``camera_moves`` is ``virtual`` (``camera_move`` above)."""
    native_width, native_height = native_size(request, grid)
    width, height = request.output_size
    frames = request.keyframes
    frame0 = frames.frame0 if frames else None
    frame1 = frames.frame1 if frames else None
    extend, reverse = isinstance(frame0, GenerationKeyframe), isinstance(frame1, GenerationKeyframe)
    start_image, end_image = isinstance(frame0, ImageKeyframe), isinstance(frame1, ImageKeyframe)
    fm = grid.frame_multiple
    k = overlap_frames(grid)
    close_on_image = request.loop and start_image and pin_last_frame
    fade_to_start = request.loop and start_image and not pin_last_frame

    new_frames = native_frame_count(request.duration_s, grid)
    blend = 0
    if request.loop and not close_on_image:
        blend = fm * max(1, round(new_frames * LOOP_BLEND_FRACTION / fm))
    extra = (k - 1) * (int(extend) + int(reverse)) + (0 if fade_to_start else blend)
    new_frames = min(new_frames, fm * max(1, (grid.max_frames - 1 - extra) // fm) + 1)
    if new_frames + extra > grid.max_frames:
        raise ValueError(f"the model's {grid.max_frames}-frame limit leaves no room for these conditions")
    native = new_frames + extra
    camera_move = requested_camera(request) if virtual_camera else ""
    if camera_move:
        whole_first, whole_last = shows_whole_frame(camera_move)
        first_pinned, last_pinned = frame0 is not None or request.loop, frame1 is not None or request.loop
        if (first_pinned and not whole_first) or (last_pinned and not whole_last):
            camera_move = ""  # an end must meet an image or a clip exactly: the concept stays prompt words

    conditions: list[Condition] = []
    if start_image:
        conditions.append(Condition("frame0", "image", 0))
    if extend:
        conditions.append(Condition("frame0", "video", 0, k))
    if end_image:
        conditions.append(Condition("frame1", "image", native - 1))
    if reverse:
        conditions.append(Condition("frame1", "video", native - k, k))
    if close_on_image:
        conditions.append(Condition("frame0", "image", native - 1))

    return Plan(
        prompt=model_prompt(request, moved_virtually=bool(camera_move)),
        negative_prompt=request.negative_prompt,
        seed=seed,
        native_width=native_width,
        native_height=native_height,
        native_frames=native,
        native_fps=grid.fps,
        output_width=width,
        output_height=height,
        output_frames=request.duration_s * OUTPUT_FPS,
        output_fps=OUTPUT_FPS,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        conditions=tuple(conditions),
        head_trim=(k - 1) if extend else 0,
        tail_trim=(k - 1) if reverse else 0,
        loop_blend=blend,
        loop_fade_to_start=fade_to_start,
        joint_fade=JOINT_FADE_LATENT_FRAMES * fm if (extend or reverse or start_image or end_image) else 0,
        drop_first=extend,
        drop_last=reverse or request.loop,
        source_stride=max(1, round(OUTPUT_FPS / grid.fps)),
        camera_move=camera_move,
    )
