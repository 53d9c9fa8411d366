"""A local directory of generated files, addressed by keys like ``generations/<id>/video.mp4``.

Uploads live in ``uploads/<owner>/<id>``: the directory listing *is* the upload index (count, bytes, age for
the quota and for retention), so API nodes sharing the directory share it with no table to keep in step.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dreamreel.core.filestore import UploadInfo, UploadQuota, check_upload_quota

_UPLOAD_ID = re.compile(r"^[a-f0-9]{32}$")
_OWNER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

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

    def generation_bytes(self, generation_id: str) -> int:
        folder = self.root / "generations" / generation_id
        return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0

    def _upload_path(self, owner: str, upload_id: str) -> Path | None:
        """Uploads live per owner, so one caller can never reference another's (ids are also random)."""
        if not _UPLOAD_ID.match(upload_id) or not _OWNER.match(owner):
            return None
        return self.root / "uploads" / owner / upload_id

    @contextmanager
    def _owner_lock(self, folder: Path) -> Iterator[None]:
        """An exclusive lock on one owner's upload folder (``flock``: every process on this machine), so a
        quota check and the write it allows happen as one step."""
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def save_upload(self, owner: str, data: bytes, quota: UploadQuota | None = None) -> str:
        """Store an uploaded keyframe image; returns its id (``upload:<id>`` in keyframe URLs). With a
        ``quota``, refuses (:class:`UploadQuotaExceeded`) when the owner would hold too many or too many bytes."""
        upload_id = secrets.token_hex(16)
        path = self._upload_path(owner, upload_id)
        if path is None:
            raise ValueError(f"unusable owner id {owner!r}")
        with self._owner_lock(path.parent):
            if quota is not None:
                check_upload_quota(self.list_uploads(owner), len(data), quota)
            tmp = path.with_name(f".{upload_id}.part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return upload_id

    def list_uploads(self, owner: str | None = None) -> list[UploadInfo]:
        base = self.root / "uploads"
        if owner is not None and not _OWNER.match(owner):
            return []
        folders = [base / owner] if owner is not None else (sorted(base.iterdir()) if base.is_dir() else [])
        found = []
        for folder in folders:
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if not _UPLOAD_ID.match(entry.name):
                    continue  # the lock file, a write in progress (".<id>.part")
                try:
                    stat = entry.stat()
                except FileNotFoundError:  # deleted while we listed
                    continue
                found.append(UploadInfo(id=entry.name, owner=folder.name, bytes=stat.st_size,
                                        created_at=stat.st_mtime))
        return sorted(found, key=lambda info: (info.created_at, info.id))

    def delete_upload(self, owner: str, upload_id: str) -> bool:
        path = self._upload_path(owner, upload_id)
        if path is None:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def upload_bytes(self, owner: str, upload_id: str) -> bytes | None:
        path = self._upload_path(owner, upload_id)
        return path.read_bytes() if path is not None and path.is_file() else None

    def upload_exists(self, owner: str, upload_id: str) -> bool:
        path = self._upload_path(owner, upload_id)
        return path is not None and path.is_file()

    def upload_path(self, owner: str, upload_id: str) -> Path | None:
        """The file of ``owner``'s upload ``upload_id`` (read it in place: a video is too big to load whole), or
        None when they have none by that id."""
        path = self._upload_path(owner, upload_id)
        return path if path is not None and path.is_file() else None

