"""A local directory of generated files, addressed by keys like ``generations/<id>/video.mp4``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.:-]+)*$")


def valid_key(key: str) -> bool:
    """Keys come back to us in URLs: accept only plain segments, never ``..`` or absolute paths."""
    return bool(_KEY.match(key)) and ".." not in key.split("/")


class LocalStorage:
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
