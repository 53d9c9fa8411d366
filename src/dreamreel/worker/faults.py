"""What a job's exception means for its record, and giving back what a failed job held.

A fault inside a job fails that job only: the worker records a :class:`FailureCode` beside a reason people
can read, frees the memory the job held, and takes the next job. Running out of memory gets its own code
because it says something different from a bug: the job was too large for this worker at that moment (a
smaller one, or the same one on a less busy worker, may well succeed).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys

from dreamreel.core.failures import FailureCode
from dreamreel.engine.inputs import InputError

MAX_REASON_CHARS = 500
"""A reason is for people (and API bodies): the first line of the exception, capped."""

OUT_OF_MEMORY_TEXT = ("can't allocate memory", "not enough memory", "out of memory", "cannot allocate memory")
"""How the allocators say so: torch's CPU allocator (``DefaultCPUAllocator: can't allocate memory`` or
``not enough memory``), CUDA (``CUDA out of memory``), the C library (``Cannot allocate memory``, ENOMEM)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation that failed: Python's ``MemoryError`` (numpy, Pillow, PyAV's ENOMEM),
    ``torch.OutOfMemoryError`` (GPU), or the ``RuntimeError`` torch's CPU allocator raises."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in OUT_OF_MEMORY_TEXT)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else "")[:MAX_REASON_CHARS]


def classify(exc: BaseException, context: str = "") -> tuple[FailureCode, str]:
    """The failure code and human reason for a job that raised ``exc`` (not a cancellation). ``context`` (the
    model, the clip's size and the model's memory budget) goes into an out-of-memory reason, in parentheses."""
    if isinstance(exc, InputError):  # a bad keyframe is the client's problem: the message names which and why
        return FailureCode.INPUT, str(exc)
    if is_out_of_memory(exc):
        where = f" ({context})" if context else ""
        return FailureCode.OUT_OF_MEMORY, f"the job ran out of memory on its worker{where}: {_first_line(exc)}"
    return FailureCode.INTERNAL, f"generation failed: {type(exc).__name__}: {_first_line(exc)}"


def release_memory() -> None:
    """Give back what a finished job held: collect the cycles an exception's traceback leaves (frames that
    still reference tensors), return torch's cached GPU blocks, and ask the C allocator to hand freed heap
    pages back to the system, so the next job starts from the same footprint as this one did."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported here: an upscale-only worker has no model
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    # Not glibc (macOS, musl): freed memory is still reused, only not handed back.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
