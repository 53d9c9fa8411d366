"""Plain value types the planner produces and the backends consume (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
