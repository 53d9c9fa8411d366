"""A local directory of generated files, addressed by keys like ``generations/<id>/video.mp4``."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

_UPLOAD_ID = re.compile(r"^[a-f0-9]{32}$")

_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.:-]+)*$")


def valid_key(key: str) -> bool:
    """Keys come back to us in URLs: accept only plain segments, never ``..`` or absolute paths."""
    return bool(_KEY.match(key)) and ".." not in key.split("/")


class LocalFiles:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def generation_dir(self, generation_id: str) -> Path:
        path = self.root / "generations" / generation_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def key_for(self, path: Path) -> str:
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def path_for(self, key: str) -> Path | None:
        """The file behind a key, or None when the key is malformed or the file is absent."""
        if not valid_key(key):
            return None
        path = self.root / key
        return path if path.is_file() else None

    def delete_generation(self, generation_id: str) -> None:
        shutil.rmtree(self.root / "generations" / generation_id, ignore_errors=True)

    def _upload_path(self, owner: str, upload_id: str) -> Path | None:
        """Uploads live per owner, so one caller can never reference another's (ids are also random)."""
        if not _UPLOAD_ID.match(upload_id) or not re.match(r"^[A-Za-z0-9_-]{1,64}$", owner):
            return None
        return self.root / "uploads" / owner / upload_id

    def save_upload(self, owner: str, data: bytes) -> str:
        """Store an uploaded keyframe image; returns its id (``upload:<id>`` in keyframe URLs)."""
        upload_id = secrets.token_hex(16)
        path = self._upload_path(owner, upload_id)
        if path is None:
            raise ValueError(f"unusable owner id {owner!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{upload_id}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return upload_id

    def upload_bytes(self, owner: str, upload_id: str) -> bytes | None:
        path = self._upload_path(owner, upload_id)
        return path.read_bytes() if path is not None and path.is_file() else None

    def upload_exists(self, owner: str, upload_id: str) -> bool:
        path = self._upload_path(owner, upload_id)
        return path is not None and path.is_file()
