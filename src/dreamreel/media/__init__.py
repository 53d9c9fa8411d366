"""Turning a model's small native clip into the exact deliverable the user asked for.

Everything between "the backend returned a ``(F, h, w, 3)`` uint8 array" and "a finished
MP4 + poster sit on disk" lives here: temporal resampling to the requested frame count
(:mod:`.resample`), spatial scaling plus H.264 encoding (:mod:`.encode`), and reading
outputs back for tests and evaluation (:mod:`.probe`). It is pure PyAV/numpy/Pillow (no
torch), and it streams frame by frame because a 4k x 216-frame output does not fit in
memory as one array.
"""

from dreamreel.media.encode import EncodedVideo, encode_mp4, write_poster
from dreamreel.media.probe import ProbedVideo, probe_mp4, read_frames
from dreamreel.media.resample import iter_output_frames, temporal_positions

__all__ = [
    "EncodedVideo",
    "ProbedVideo",
    "encode_mp4",
    "iter_output_frames",
    "probe_mp4",
    "read_frames",
    "temporal_positions",
    "write_poster",
]
