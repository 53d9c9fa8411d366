"""A loopback HTTP server handing out keyframe images (and hostile non-images) to the server under test."""

from __future__ import annotations

import base64
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (320, 200), alpha: bool = False) -> bytes:
    """A two-tone test picture (a block in the top-left quarter), optionally with a transparent corner."""
    image = Image.new("RGBA" if alpha else "RGB", size, (*colour, 255) if alpha else colour)
    image.paste((20, 20, 20, 255) if alpha else (20, 20, 20), (0, 0, size[0] // 2, size[1] // 2))
    if alpha:
        image.paste((0, 0, 0, 0), (size[0] * 3 // 4, 0, size[0], size[1] // 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (400, 300)) -> bytes:
    """A JPEG whose EXIF says "rotate 90°" (orientation 6), as phones write portrait shots."""
    image = Image.new("RGB", size, colour)
    image.paste((240, 240, 240), (0, 0, size[0] // 3, size[1]))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


class ImageHost:
    """Serves ``files`` by path on loopback; ``/huge.png`` declares a 64 MB body (refused by the fetch size cap).
    A subclass serves other hostile paths by overriding :meth:`special`."""

    content_type = "application/octet-stream"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                host.requests.append(self.path)
                if host.special(self):
                    return
                body = host.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", host.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def special(self, handler: BaseHTTPRequestHandler) -> bool:
        """Answer a hostile path itself (True), or leave ``handler`` to serve ``files`` (False)."""
        if handler.path != "/huge.png":
            return False
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(64 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b"\x89PNG" + b"\0" * 4096)
        return True

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
