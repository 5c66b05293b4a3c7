"""Media content and URL signing, without a server."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.model.media import (
    BLOCK_SIZE,
    EBML_MAGIC,
    media_chunks,
    media_sha256,
    sign_media,
    verify_media_signature,
)

SID = "RT" + "ab" * 16
OTHER_SID = "RT" + "cd" * 16


def _bytes(sid: str, size: int, chunk: int = 4096, start: int = 0) -> bytes:
    return b"".join(media_chunks(sid, size, chunk, start=start))


@settings(max_examples=40, deadline=None, database=None)
@given(
    size=st.integers(min_value=0, max_value=3 * BLOCK_SIZE + 17),
    chunk=st.integers(min_value=1, max_value=2 * BLOCK_SIZE),
)
def test_chunking_does_not_change_the_bytes(size: int, chunk: int) -> None:
    data = _bytes(SID, size, chunk)
    chunks = list(media_chunks(SID, size, chunk))
    assert len(data) == size
    assert data == _bytes(SID, size, 65_000)
    assert all(len(c) == chunk for c in chunks[:-1])
    assert hashlib.sha256(data).hexdigest() == media_sha256(SID, size)


@settings(max_examples=30, deadline=None, database=None)
@given(
    start=st.integers(min_value=0, max_value=2 * BLOCK_SIZE),
    length=st.integers(min_value=0, max_value=BLOCK_SIZE + 5),
)
def test_a_range_is_a_slice_of_the_whole(start: int, length: int) -> None:
    whole = _bytes(SID, 3 * BLOCK_SIZE + 1)
    assert _bytes(SID, start + length, start=start) == whole[start : start + length]


def test_content_is_deterministic_per_sid_and_block() -> None:
    data = _bytes(SID, 4 * BLOCK_SIZE)
    assert data.startswith(EBML_MAGIC)
    assert data == _bytes(SID, 4 * BLOCK_SIZE, 1000)
    assert data != _bytes(OTHER_SID, 4 * BLOCK_SIZE)
    blocks = {data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)}
    assert len(blocks) == 4  # no two blocks alike, so a repeated block changes the hash
    assert media_sha256(SID, 10) != media_sha256(SID, 11)


def test_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError):
        list(media_chunks(SID, 10, 0))


def test_signature_verification() -> None:
    secret = b"s" * 32
    name = f"{SID}.mka"
    signature = sign_media(secret, name, 1_000)
    assert verify_media_signature(secret, name, "1000", signature, now=999.0)
    assert not verify_media_signature(secret, name, "1000", signature, now=1001.0)  # expired
    assert not verify_media_signature(secret, name, "1001", signature, now=999.0)
    assert not verify_media_signature(secret, f"{SID}.mkv", "1000", signature, now=999.0)
    assert not verify_media_signature(b"t" * 32, name, "1000", signature, now=999.0)
    assert not verify_media_signature(secret, name, None, signature, now=999.0)
    assert not verify_media_signature(secret, name, "1000", None, now=999.0)
