"""Where ``archive`` keeps recordings: a local directory (``file://``) or an S3 bucket
(``s3://``), behind one small interface, plus the Redis index of what was archived where.

Every backend stages bytes out of sight and commits them under the final key only when the
whole recording is there (a ``.part`` file renamed into place; a multipart upload completed),
so a crash never leaves a partial file under the final name. Staged bytes survive a failed
attempt and the next attempt resumes after them; bytes found wrong in number
(:class:`SizeMismatch`) are discarded.

Keys are relative paths such as ``RM.../RT....mkv``. :func:`open_storage` reads
``ARCHIVE_URL``; boto3 is imported only for ``s3://``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from workers.archive.errors import ArchiveBusy, ArchivePaused, SizeMismatch
from workers.archive.index import ArchiveIndex, ArchiveRecord

if TYPE_CHECKING:
    from schemas.settings import WorkerSettings

__all__ = [
    "ArchiveBusy",
    "ArchiveIndex",
    "ArchivePaused",
    "ArchiveRecord",
    "SizeMismatch",
    "Storage",
    "Stored",
    "file_path",
    "open_storage",
]


@dataclass(frozen=True, slots=True)
class Stored:
    """An object committed under its final key, its size verified."""

    location: str
    size: int
    sha256: str | None = None


class Storage(Protocol):
    def location(self, key: str) -> str:
        """Where ``key`` lives, as a URL (``file:///…``, ``s3://bucket/…``)."""
        ...

    def size_of(self, key: str) -> int | None:
        """The size of the committed object ``key``, or None when there is none."""
        ...

    def staged(self, key: str) -> int:
        """How many leading bytes of ``key`` earlier attempts staged (0 when none)."""
        ...

    def write(self, key: str, chunks: Iterable[bytes], *, start: int, size: int) -> Stored:
        """Keep the first ``start`` staged bytes, append ``chunks`` and, once there are exactly
        ``size`` bytes, commit them under ``key``. Raises :class:`SizeMismatch` (staged bytes
        discarded) when the chunks end short or run long; any error raised by ``chunks`` leaves
        what was staged for the next attempt."""
        ...

    def discard(self, key: str) -> None:
        """Forget the bytes staged for ``key``."""
        ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> Stored:
        """Store a small object atomically (the JSON sidecar)."""
        ...


def file_path(url: str) -> Path:
    """The directory of a ``file://`` URL: ``file:///srv/rec`` is absolute; ``file://./rec``
    and ``file:rec`` are relative to the working directory."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise ValueError(f"not a file:// URL: {url}")
    host = "" if parts.netloc in ("", "localhost") else parts.netloc
    path = unquote(host + parts.path)
    if not path:
        raise ValueError(f"no directory in {url}")
    return Path(path)


def open_storage(url: str, settings: WorkerSettings | None = None) -> Storage:
    """The storage ``ARCHIVE_URL`` names; ``settings`` carries the S3 endpoint and keys."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from workers.archive.file import FileStorage

        return FileStorage(file_path(url))
    if scheme == "s3":
        from workers.archive.s3 import S3Storage, s3_client

        parts = urlsplit(url)
        return S3Storage(s3_client(settings), parts.netloc, parts.path.strip("/"))
    raise ValueError(f"ARCHIVE_URL must be file:// or s3://, not {scheme or url!r}")
