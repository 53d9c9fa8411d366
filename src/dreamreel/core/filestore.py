"""The file verbs the generation service needs, as a protocol: the core names them, ``dreamreel.files``
implements them (a local directory today, a shared mount on many machines)."""

from __future__ import annotations

from typing import Protocol


class FileStore(Protocol):
    def save_upload(self, owner: str, data: bytes) -> str:
        """Keep an uploaded image for ``owner``; returns its id (``upload:<id>`` references it)."""
        ...

    def upload_exists(self, owner: str, upload_id: str) -> bool:
        """Whether ``owner`` (and only they) uploaded ``upload_id``."""
        ...

    def delete_generation(self, generation_id: str) -> None:
        """Remove every file of a finished generation (its video, poster, previews)."""
        ...
