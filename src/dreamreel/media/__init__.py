"""Frames and files: everything between "here are RGB frames" and "a finished MP4 + poster sit on disk".

Temporal resampling to the requested frame count (:mod:`.resample`), spatial scaling plus H.264 encoding
(:mod:`.encode`), joints, loops and the virtual camera over frames (:mod:`.seam`, :mod:`.loop`,
:mod:`.camera`), earlier clips read back (:mod:`.clip`, :mod:`.probe`), image decoding with its checks
(:mod:`.images`) and re-encoding at a larger size (:mod:`.upscale`). Pure PyAV/numpy/Pillow, no torch and
no model: it streams frame by frame because a 4k x 216-frame output does not fit in memory as one array.
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
