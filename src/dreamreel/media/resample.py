"""Temporal resampling of a native clip to the output frame count.

The model produces ``native_frames`` frames at its own fps; the user asked for
``output_frames`` frames at theirs. We stretch the native clip over the whole output so
that output frame 0 *is* native frame 0 and the last output frame *is* the last native frame.
Pinning both endpoints matters beyond looks: keyframe conditioning (start/end images),
clip extension and seamless loops all rely on the first/last delivered frames being exactly
the frames the model was steered towards, not a blend next to them.

In-between frames are linear cross-fades of the two nearest native frames. That is cheap,
deterministic and artefact-free at the small native size; it is not motion-compensated
interpolation (a later, optional upgrade could swap in a flow-based interpolator behind the
same ``iter_output_frames`` interface).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def temporal_positions(native_frames: int, output_frames: int) -> list[tuple[int, int, float]]:
    """Map each output frame to ``(i0, i1, weight)`` over the native frames.

    Output frame ``k`` sits at native position ``k * (N - 1) / (M - 1)``; the frame is
    ``(1 - weight) * native[i0] + weight * native[i1]`` with ``i1 = min(i0 + 1, N - 1)``.
    The position is computed with integer arithmetic so the endpoints are exact
    (``(0, ?, 0.0)`` first and ``(N - 1, N - 1, 0.0)`` last) and no float rounding can
    push an index out of range or leave a 1e-16 weight on a neighbour.

    A single output frame maps to native frame 0 (the "first frame" poster case).
    """
    if native_frames < 1:
        raise ValueError(f"native_frames must be >= 1, got {native_frames}")
    if output_frames < 1:
        raise ValueError(f"output_frames must be >= 1, got {output_frames}")
    if output_frames == 1:
        return [(0, min(1, native_frames - 1), 0.0)]
    span_native = native_frames - 1
    span_output = output_frames - 1
    positions: list[tuple[int, int, float]] = []
    for k in range(output_frames):
        i0, rem = divmod(k * span_native, span_output)
        i1 = min(i0 + 1, span_native)
        positions.append((i0, i1, rem / span_output))
    return positions


def iter_output_frames(native: np.ndarray, output_frames: int) -> Iterator[np.ndarray]:
    """Yield ``output_frames`` native-size uint8 frames, one at a time.

    Frames are produced lazily so the caller (the encoder) only ever holds one output frame
    at native size plus whatever it scales it to; the full output never exists as an
    array. Frames that land exactly on a native frame are yielded as that frame (a view,
    no copy, no rounding), so endpoints are bit-identical to the model's output.
    Blends are rounded to nearest rather than truncated, so a 50/50 blend of equal pixels
    does not drift darker.

    Arguments are validated here, at call time, not at the first ``next()``: the encoder
    calls this before it creates any file, so bad input never leaves a temp file behind.
    """
    if native.ndim != 4 or native.shape[-1] != 3 or native.dtype != np.uint8 or native.shape[0] < 1:
        raise ValueError(f"native must be a (F, h, w, 3) uint8 array, got {native.dtype} {native.shape}")
    positions = temporal_positions(native.shape[0], output_frames)
    return _blend(native, positions)


def _blend(native: np.ndarray, positions: list[tuple[int, int, float]]) -> Iterator[np.ndarray]:
    for i0, i1, weight in positions:
        if weight == 0.0:
            yield native[i0]
            continue
        a = native[i0].astype(np.float32)
        b = native[i1].astype(np.float32)
        blended = a + (b - a) * np.float32(weight)
        yield np.clip(np.rint(blended), 0, 255).astype(np.uint8)
