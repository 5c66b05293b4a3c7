"""Archive storage in an S3 bucket: AWS, or MinIO and other S3-compatible stores through
``S3_ENDPOINT_URL``.

A recording smaller than one part goes up in one ``PutObject``; a larger one as a multipart
upload of fixed-size parts. Either way the object appears whole or not at all: a multipart
upload is visible only once completed. Every request carries its Content-MD5. An attempt that
stops early leaves its multipart upload open, and the next attempt lists the upload's parts and
resumes after the last whole one. Memory per upload is about two parts, whatever the size.
Uploads never completed (a recording dead-lettered mid-way) stay until a bucket lifecycle rule
(``AbortIncompleteMultipartUpload``) removes them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from workers.archive import Stored
from workers.archive.errors import SizeMismatch
from workers.errors import translate

if TYPE_CHECKING:
    from schemas.settings import WorkerSettings

PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
CONTENT_TYPES = {"mka": "audio/x-matroska", "mkv": "video/x-matroska", "json": "application/json"}


def s3_client(settings: WorkerSettings | None) -> Any:
    """A boto3 S3 client: ``S3_ENDPOINT_URL`` and ``AWS_*`` from settings when given, else
    boto3's own chain (environment, shared config, instance role)."""
    import boto3
    from botocore.config import Config

    endpoint = settings.s3_endpoint_url if settings is not None else None
    options: dict[str, Any] = {
        "connect_timeout": 10,
        "read_timeout": 60,
        "retries": {"mode": "standard", "max_attempts": 3},
        # Integrity comes from Content-MD5 and the size check; the CRC checksums newer boto3
        # adds by default are not understood by every S3-compatible store.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if endpoint:
        options["s3"] = {"addressing_style": "path"}
    session = boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id if settings else None,
        aws_secret_access_key=settings.aws_secret_access_key if settings else None,
        aws_session_token=settings.aws_session_token if settings else None,
        region_name=settings.aws_region if settings else None,
    )
    return session.client("s3", endpoint_url=endpoint, config=Config(**options))


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(name.rpartition(".")[2], "application/octet-stream")


@contextmanager
def _boto_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, what) from exc


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str = "", *, part_size: int = PART_SIZE):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def size_of(self, key: str) -> int | None:
        name = self._name(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            raise translate(exc, f"head of {name}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"head of {name}") from exc
        return int(head["ContentLength"])

    def staged(self, key: str) -> int:
        name = self._name(key)
        with _boto_errors(f"listing of uploads of {name}"):
            uploads = self._uploads(name)
            return len(self._whole_parts(name, uploads[-1])) * self.part_size if uploads else 0

    def discard(self, key: str) -> None:
        name = self._name(key)
        with _boto_errors(f"abort of uploads of {name}"):
            for upload_id in self._uploads(name):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)

    def write(self, key: str, chunks: Iterable[bytes], *, start: int, size: int) -> Stored:
        name = self._name(key)
        sha256: str | None
        with _boto_errors(f"upload of {name}"):
            if size < self.part_size:
                sha256 = self._put_whole(key, name, chunks, start=start, size=size)
            else:
                sha256 = self._put_parts(name, chunks, start=start, size=size)
        stored = self.size_of(key)
        if stored != size:  # only a misbehaving store could cause this; never keep it
            with _boto_errors(f"delete of {name}"):
                self.client.delete_object(Bucket=self.bucket, Key=name)
            raise SizeMismatch(f"{name}: S3 holds {stored} bytes, the recording has {size}")
        return Stored(self.location(key), size, sha256)

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> Stored:
        name = self._name(key)
        with _boto_errors(f"upload of {name}"):
            self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentMD5=_md5(data),
                ContentType=content_type,
            )  # fmt: skip
        return Stored(self.location(key), len(data), hashlib.sha256(data).hexdigest())

    def _put_whole(
        self, key: str, name: str, chunks: Iterable[bytes], *, start: int, size: int
    ) -> str:
        if start:  # nothing is ever staged for a single-request upload
            raise SizeMismatch(f"{name}: no staged upload to resume at byte {start}")
        data = bytearray()
        for chunk in chunks:
            data += chunk
            if len(data) > size:
                break
        if len(data) != size:
            raise SizeMismatch(f"{name}: received {len(data)} bytes, the recording has {size}")
        self.put_bytes(key, bytes(data), content_type=_content_type(name))
        return hashlib.sha256(data).hexdigest()

    def _put_parts(
        self, name: str, chunks: Iterable[bytes], *, start: int, size: int
    ) -> str | None:
        upload_id, parts = self._resume(name, start)
        digest = hashlib.sha256() if start == 0 else None  # a resumed upload is not re-read
        buffer = bytearray()
        written = start
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                break
            buffer += chunk
            if digest is not None:
                digest.update(chunk)
            while len(buffer) >= self.part_size:
                parts.append(self._upload_part(name, upload_id, len(parts) + 1, buffer))
                del buffer[: self.part_size]
        if written != size:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise SizeMismatch(f"{name}: received {written} bytes, the recording has {size}")
        if buffer or not parts:
            parts.append(self._upload_part(name, upload_id, len(parts) + 1, buffer))
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return digest.hexdigest() if digest is not None else None

    def _upload_part(
        self, name: str, upload_id: str, number: int, buffer: bytearray
    ) -> dict[str, Any]:
        with memoryview(buffer) as view:  # one copy of the part, not two
            data = bytes(view[: self.part_size])
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data,
            ContentMD5=_md5(data),
        )  # fmt: skip
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _resume(self, name: str, start: int) -> tuple[str, list[dict[str, Any]]]:
        """The open upload holding the first ``start`` bytes, or a new one from byte 0."""
        uploads = self._uploads(name)
        if start:
            parts = self._whole_parts(name, uploads[-1]) if uploads else []
            if not parts or len(parts) * self.part_size != start:
                raise SizeMismatch(f"{name}: the staged upload does not hold {start} bytes")
            return uploads[-1], parts
        for stale in uploads:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=stale)
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=name, ContentType=_content_type(name)
        )
        return str(created["UploadId"]), []

    def _uploads(self, name: str) -> list[str]:
        """Ids of the open multipart uploads of ``name``, oldest first."""
        found: list[tuple[Any, str]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=name):
            found += [(u["Initiated"], u["UploadId"]) for u in page.get("Uploads", [])
                      if u["Key"] == name]  # fmt: skip
        return [upload_id for _, upload_id in sorted(found, key=lambda item: item[0])]

    def _whole_parts(self, name: str, upload_id: str) -> list[dict[str, Any]]:
        """The leading run of whole parts (1, 2, … each ``part_size`` bytes) of an upload."""
        listed: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=name, UploadId=upload_id):
            listed += page.get("Parts", [])
        parts: list[dict[str, Any]] = []
        for part in sorted(listed, key=lambda p: int(p["PartNumber"])):
            if int(part["PartNumber"]) != len(parts) + 1 or int(part["Size"]) != self.part_size:
                break
            parts.append({"PartNumber": len(parts) + 1, "ETag": part["ETag"]})
        return parts
