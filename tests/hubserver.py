"""A local stand-in for the Hugging Face Hub: one model repository at one commit, over plain HTTP on loopback.

The real ``huggingface_hub`` client is pointed at it with ``HF_ENDPOINT`` (in a ``dreamreel models pull``
subprocess), so what the tests exercise is the client's own code. The routes are the ones huggingface_hub
2.4 calls for ``HfApi.model_info`` and ``snapshot_download(revision=<commit>, local_dir=...)``, read from its
source (``hf_api.py``: ``model_info``, ``_iter_repo_tree_pages``; ``file_download.py``:
``get_hf_file_metadata``, ``http_get``):

* ``GET /api/models/{repo}/revision/{rev}``: ``{"id", "sha", "siblings"}``; the commit is ``sha``.
* ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=...``: one page (no ``Link: rel=next``) of
  ``{"type": "file", "path", "size", "oid", "lfs"}``. No ``xetHash``: the client then asks each file's
  metadata with a HEAD and downloads over plain HTTP.
* ``HEAD`` / ``GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (the content's sha256, as
  the hub gives LFS files), ``Content-Length``, ``Accept-Ranges``; a GET with ``Range: bytes=N-`` gets
  ``206`` and ``Content-Range``.
* Anything else: ``404`` with the hub's ``X-Error-Code`` (``RepoNotFound``, ``EntryNotFound``).

Every revision resolves to the one commit served, as a mirror of one snapshot would: a config pinned to
another commit is told this one. :meth:`HubServer.cut_next_get` makes the next GET of a file send its
headers and the first bytes only, then close the connection, as a network drop does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request the server answered."""

    method: str
    path: str
    range: str | None


class HubServer:
    def __init__(self, repo: str, commit: str, files: dict[str, bytes]) -> None:
        self.repo, self.commit, self.files = repo, commit, dict(files)
        self.seen: list[Seen] = []
        self._cuts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hubserver", daemon=True)

    @classmethod
    def from_dir(cls, repo: str, commit: str, root: Path, extra: dict[str, bytes] | None = None) -> HubServer:
        """Serve every file under ``root`` (paths relative to it), plus ``extra``."""
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        return cls(repo, commit, {**files, **(extra or {})})

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def cut_next_get(self, path: str, after_bytes: int) -> None:
        """The next GET of ``path`` without a Range ends after ``after_bytes`` of its body: connection closed."""
        with self._lock:
            self._cuts[path] = after_bytes

    def take_seen(self) -> list[Seen]:
        """The requests since the last call."""
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    def _record(self, seen: Seen, name: str | None = None) -> int | None:
        """Log ``seen``; for a GET of file ``name`` without a Range, the byte count to cut it at, if armed."""
        with self._lock:
            self.seen.append(seen)
            if seen.method == "GET" and seen.range is None and name in self._cuts:
                return self._cuts.pop(name)
        return None

    def tree(self) -> list[dict]:
        entries = []
        for path, data in sorted(self.files.items()):
            entry = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return entries


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            api = f"/api/models/{hub.repo}/"
            resolve = f"/{hub.repo}/resolve/"
            if path.startswith(api) and body:
                rest = path[len(api):]
                hub._record(Seen(self.command, path, None))
                if rest.startswith("revision/"):
                    siblings = [{"rfilename": name} for name in sorted(hub.files)]
                    return self._json({"id": hub.repo, "sha": hub.commit, "private": False, "siblings": siblings})
                if rest.startswith("tree/"):
                    _, _, under = rest[len("tree/"):].partition("/")
                    entries = [e for e in hub.tree() if not under or e["path"].startswith(under.rstrip("/") + "/")]
                    return self._json(entries)
            if path.startswith(resolve):
                _, _, name = path[len(resolve):].partition("/")
                if name in hub.files:
                    return self._file(path, name, body=body)
                return self._error(404, "EntryNotFound", f"{name} not found")
            hub._record(Seen(self.command, path, None))
            return self._error(404, "RepoNotFound", "Repository not found")

        def _json(self, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _file(self, path: str, name: str, *, body: bool) -> None:
            data = hub.files[name]
            requested = self.headers.get("Range")
            cut = hub._record(Seen(self.command, path, requested), name)
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", requested or "")
            if body and match:
                start = int(match.group(1))
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", hub.commit)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            if cut is not None:  # a dropped connection: part of the body, then the socket closes
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data[start:])

    return Handler
