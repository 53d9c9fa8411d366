"""Pieces every diffusers backend shares: accepted dtypes, quiet library logs, float frames -> uint8."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

DType = Literal["float32", "bfloat16"]
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""float16 is not offered: the T5-family text encoders (LTX-Video's T5 v1.1, Wan's UMT5) are known to
overflow in it, and CPUs without native half-precision kernels run it far slower than bfloat16."""


def torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype for a ``Settings.dtype`` string; a clear error for anything not offered."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def quiet_library_logs() -> None:
    """Loading bars and per-call scheduler notices from diffusers/transformers only clutter worker logs."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline output (float in [0, 1], ``output_type="np"``) as uint8 pixels."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
