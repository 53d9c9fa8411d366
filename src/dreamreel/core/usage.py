"""What a generation costs in abstract units, for the dialects that report usage.

Relative prices follow the Ray 2 pages: 720p costs 2x and 1080p 4x the 540p price, 9 s costs 2x
5 s; 4k is priced as 4x 1080p (its pixel ratio). A 540p 5 s clip is one unit.
"""

from __future__ import annotations

from dreamreel.core.request import GenerationRequest, Resolution

RESOLUTION_FACTOR = {Resolution.P540: 1, Resolution.P720: 2, Resolution.P1080: 4, Resolution.P4K: 16}


def units_for(request: GenerationRequest) -> int:
    return RESOLUTION_FACTOR[request.resolution] * (2 if request.duration_s == 9 else 1)
