"""Deterministic recording media and pre-signed media URLs.

A recording's bytes depend only on its SID and size: 64 KiB blocks share a body derived from
the SID by SHA-256 in counter mode, and each block starts with its own 32-byte digest of the
block index, so a misplaced or repeated block changes the file's hash. Block 0 opens with the
EBML magic number of Matroska files. Bytes are produced block by block, never held whole.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from functools import lru_cache

BLOCK_SIZE = 64 * 1024
DEFAULT_CHUNK = 1024 * 1024  # each a single sendall: fewer, larger writes stream fastest
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
CONTENT_TYPES = {"mka": "audio/x-matroska", "mkv": "video/x-matroska"}


@lru_cache(maxsize=64)
def _block_body(sid: str) -> bytes:
    key = hashlib.sha256(b"roomrec-emulator-media\x00" + sid.encode()).digest()
    return b"".join(
        hashlib.sha256(key + counter.to_bytes(4, "big")).digest()
        for counter in range(BLOCK_SIZE // 32)
    )


def _block(sid: str, index: int) -> bytes:
    body = _block_body(sid)
    head = hashlib.sha256(body[:32] + index.to_bytes(8, "big")).digest()
    if index == 0:
        head = EBML_MAGIC + head[len(EBML_MAGIC) :]
    return head + body[len(head) :]


def media_pieces(sid: str, start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of the media of ``sid``, in pieces of at most one block."""
    position = start
    while position < stop:
        index, skip = divmod(position, BLOCK_SIZE)
        take = min(BLOCK_SIZE - skip, stop - position)
        block = _block(sid, index)
        yield block if (skip == 0 and take == BLOCK_SIZE) else block[skip : skip + take]
        position += take


def media_chunks(
    sid: str, size: int, chunk: int = DEFAULT_CHUNK, *, start: int = 0
) -> Iterator[bytes]:
    """Bytes ``[start, size)`` of the media of ``sid``, in chunks of exactly ``chunk`` bytes
    (the last one shorter)."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    buffer = bytearray()
    for piece in media_pieces(sid, start, size):
        if not buffer and len(piece) == chunk:
            yield piece
            continue
        buffer += piece
        while len(buffer) >= chunk:
            yield bytes(buffer[:chunk])
            del buffer[:chunk]
    if buffer:
        yield bytes(buffer)


def media_sha256(sid: str, size: int) -> str:
    """Hex SHA-256 of the whole media of ``sid`` at ``size`` bytes."""
    digest = hashlib.sha256()
    for piece in media_pieces(sid, 0, size):
        digest.update(piece)
    return digest.hexdigest()


def media_filename(sid: str, container: str) -> str:
    return f"{sid}.{container}"


def sign_media(secret: bytes, filename: str, expires: int) -> str:
    """The signature of a media URL for ``filename`` valid until unix time ``expires``."""
    message = f"{filename}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_media_signature(
    secret: bytes, filename: str, expires: str | None, signature: str | None, *, now: float
) -> bool:
    """Whether ``signature`` is genuine for ``filename`` and ``expires`` has not passed."""
    if not expires or not signature or not expires.isdigit():
        return False
    expected = sign_media(secret, filename, int(expires))
    return hmac.compare_digest(expected, signature) and now <= int(expires)
