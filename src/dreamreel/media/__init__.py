"""Frames and files: everything between "here are RGB frames" and "a finished MP4 + poster sit on disk".

Temporal resampling to the requested frame count (:mod:`.resample`), spatial scaling plus H.264 encoding
(:mod:`.encode`), joints, loops and the virtual camera over frames (:mod:`.seam`, :mod:`.loop`,
:mod:`.camera`), earlier clips read back (:mod:`.clip`, :mod:`.probe`), image decoding with its checks
(:mod:`.images`) and re-encoding at a larger size (:mod:`.upscale`). Pure PyAV/numpy/Pillow, no torch and
no model: it streams frame by frame because a 4k x 216-frame output does not fit in memory as one array.

The package imports none of its modules: what plans a clip (``camera``, ``resample``) loads without PyAV, as
the GPU check's machine needs (``bench/device_check.py``).
"""
