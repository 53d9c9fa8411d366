"""The file verbs the generation service needs, as a protocol: the core names them, ``dreamreel.files``
implements them (a local directory today, a shared mount on many machines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dreamreel.core.errors import PayloadTooLarge


class UploadQuotaExceeded(PayloadTooLarge):
    """Keeping this upload would put the key over its upload quota; deleting uploads frees it."""


@dataclass(frozen=True)
class UploadQuota:
    """What one owner may hold in uploads at a time."""

    max_count: int
    max_bytes: int


@dataclass(frozen=True)
class UploadInfo:
    """One kept upload, as listed (for its owner, for the quota, for retention)."""

    id: str
    owner: str
    bytes: int
    created_at: float


def check_upload_quota(held: list[UploadInfo], size: int, quota: UploadQuota) -> None:
    """Refuse an upload of ``size`` bytes that would take an owner holding ``held`` past ``quota``, saying
    which limit (:class:`UploadQuotaExceeded`)."""
    held_bytes = sum(info.bytes for info in held)
    if len(held) + 1 > quota.max_count:
        raise UploadQuotaExceeded(
            f"upload quota exceeded: this key holds {len(held)} of its {quota.max_count} uploads; "
            "delete some (DELETE /uploads/{id}) to upload more"
        )
    if held_bytes + size > quota.max_bytes:
        raise UploadQuotaExceeded(
            f"upload quota exceeded: this key holds {held_bytes} bytes of uploads and this one is {size} bytes, "
            f"over its {quota.max_bytes}-byte limit; delete some (DELETE /uploads/{{id}}) to upload more"
        )


class FileStore(Protocol):
    def save_upload(self, owner: str, data: bytes, quota: UploadQuota | None = None) -> str:
        """Keep an uploaded image for ``owner``; returns its id (``upload:<id>`` references it). With a
        ``quota``, raises :class:`UploadQuotaExceeded` instead when keeping it would exceed it (checked and
        written atomically, so parallel uploads of one owner cannot all slip under it)."""
        ...

    def upload_exists(self, owner: str, upload_id: str) -> bool:
        """Whether ``owner`` (and only they) uploaded ``upload_id``."""
        ...

    def list_uploads(self, owner: str | None = None) -> list[UploadInfo]:
        """``owner``'s uploads (every owner's when None), oldest first."""
        ...

    def delete_upload(self, owner: str, upload_id: str) -> bool:
        """Remove ``owner``'s upload; False when they have none by that id (another owner's included)."""
        ...

    def delete_generation(self, generation_id: str) -> None:
        """Remove every file of a finished generation (its video, poster, previews)."""
        ...

    def generation_bytes(self, generation_id: str) -> int:
        """Bytes the generation's files take (0 when it has none)."""
        ...
