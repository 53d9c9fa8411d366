"""Plain value types the planner produces and the backends consume (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def output_duration_s(self) -> float:
        return self.output_frames / self.output_fps
