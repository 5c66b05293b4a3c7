"""Archive storage in a local (or mounted) directory.

Media is staged in ``<final>.part`` next to its final name, fsynced, then renamed over the
final name with ``os.replace`` (atomic on one file system) and the directory fsynced, so the
final name only ever holds a complete file. The stable ``.part`` name is what lets a later
attempt resume; the archive handler holds a per-recording lock, so one task writes it at a
time. Small objects (the sidecar) go through a unique temporary name instead.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from workers.storage import Stored
from workers.storage.errors import SizeMismatch, from_os_error

READ_BLOCK = 1024 * 1024


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key {key!r} leaves the archive directory")
        return path

    def _part(self, key: str) -> Path:
        path = self._path(key)
        return path.with_name(path.name + ".part")

    def location(self, key: str) -> str:
        return self._path(key).as_uri()

    def size_of(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise from_os_error(exc, f"stat of {key}") from exc

    def staged(self, key: str) -> int:
        try:
            return self._part(key).stat().st_size
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise from_os_error(exc, f"stat of {key}.part") from exc

    def discard(self, key: str) -> None:
        try:
            self._part(key).unlink(missing_ok=True)
        except OSError as exc:
            raise from_os_error(exc, f"removal of {key}.part") from exc

    def write(self, key: str, chunks: Iterable[bytes], *, start: int, size: int) -> Stored:
        final, part = self._path(key), self._part(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            written, digest = self._append(part, chunks, start=start, size=size, key=key)
            if written != size:
                part.unlink(missing_ok=True)
                raise SizeMismatch(f"{key}: received {written} bytes, the recording has {size}")
            os.replace(part, final)
            _fsync_directory(final.parent)
            stored = final.stat().st_size
        except OSError as exc:
            raise from_os_error(exc, f"archive write of {key}") from exc
        if stored != size:  # only another writer could cause this; never keep it
            final.unlink(missing_ok=True)
            raise SizeMismatch(f"{key}: {stored} bytes on disk, the recording has {size}")
        return Stored(final.as_uri(), size, digest)

    def _append(
        self, part: Path, chunks: Iterable[bytes], *, start: int, size: int, key: str
    ) -> tuple[int, str]:
        """Keep ``start`` staged bytes (hashing them again), append ``chunks``; always leave
        what was written flushed to disk, so a failed attempt's bytes can be resumed."""
        digest = hashlib.sha256()
        fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+b") as out:
            if os.fstat(out.fileno()).st_size < start:
                raise SizeMismatch(f"{key}: {start} bytes asked to resume, fewer are staged")
            out.truncate(start)
            for block in iter(lambda: out.read(READ_BLOCK), b""):
                digest.update(block)
            written = start
            try:
                for chunk in chunks:
                    written += len(chunk)
                    if written > size:
                        break
                    out.write(chunk)
                    digest.update(chunk)
            finally:
                out.flush()
                os.fsync(out.fileno())
        return written, digest.hexdigest()

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> Stored:
        final = self._path(key)
        temporary = final.with_name(f"{final.name}.part-{uuid.uuid4().hex}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                with temporary.open("wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, final)
            finally:
                temporary.unlink(missing_ok=True)
            _fsync_directory(final.parent)
        except OSError as exc:
            raise from_os_error(exc, f"archive write of {key}") from exc
        return Stored(final.as_uri(), len(data), hashlib.sha256(data).hexdigest())
