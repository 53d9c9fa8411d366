"""Small source videos for the edit tests, and a loopback HTTP host that serves them (and hostile bodies).

``mp4_bytes`` writes a real H.264 MP4 with PyAV: a gradient with a bright disc moving across it, so an edit's
output has structure to keep. Sources are tiny (256x144, 1 s at 24 fps by default) so that a test's edit is
one fast pass of the tiny model.
"""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler

import av
import numpy as np
from tests.acceptance.imagehost import ImageHost

HUGE_BYTES = 200 * 1024 * 1024
"""What ``/huge.mp4`` declares: twice the 100 MB source cap (the fetcher refuses it from the header; a body
that streams past the cap undeclared is ``tests/unit/test_fetch_video.py``'s)."""


def mp4_bytes(width: int = 256, height: int = 144, seconds: float = 1.0, fps: int = 24) -> bytes:
    """An H.264 yuv420p MP4 of ``seconds`` at ``fps``: a fixed gradient with a disc moving left to right."""
    frames = max(1, round(seconds * fps))
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                     np.full_like(x, 90)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        radius = max(4, min(width, height) // 6)
        for index in range(frames):
            frame = base.copy()
            cx = radius + (width - 2 * radius) * index // max(1, frames - 1)
            frame[(x - cx) ** 2 + (y - height // 2) ** 2 < radius**2] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


class VideoHost(ImageHost):
    """Serves ``files`` by path on loopback; ``/huge.mp4`` declares a 200 MB body (starting with a real MP4's
    first bytes) and streams it until the fetcher hangs up."""

    content_type = "video/mp4"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.head = mp4_bytes(64, 64, 0.25)[:4096]
        super().__init__(files)

    def special(self, handler: BaseHTTPRequestHandler) -> bool:
        if handler.path != "/huge.mp4":
            return False
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(HUGE_BYTES))
        handler.end_headers()
        chunk = b"\0" * (1024 * 1024)
        try:
            handler.wfile.write(self.head)
            sent = len(self.head)
            while sent < HUGE_BYTES:
                handler.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the fetcher stopped reading: expected
            pass
        return True
