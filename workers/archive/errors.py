"""The errors of archive storage, and the one place where boto3/botocore and file-system
errors become the worker's transient/permanent distinction. (botocore is imported only when
an S3 error is translated, so reading the archive index never loads it.)"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from workers.errors import Paused, PermanentError, RoomrecError, TransientError

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError


class SizeMismatch(TransientError):
    """The bytes received differ in number from the recording's ``size``; staged bytes are
    discarded and the next attempt starts over."""


class ArchivePaused(Paused):
    """An attempt reached its time budget; the staged bytes stay and the next attempt
    resumes where this one stopped."""


class ArchiveBusy(TransientError):
    """Another task is archiving the same recording right now."""


# S3 error codes worth another attempt; any other 4xx (AccessDenied, NoSuchBucket, ...) is not.
_TRANSIENT_CODES = frozenset({
    "BadDigest", "InternalError", "NoSuchUpload", "OperationAborted", "RequestTimeout",
    "RequestTimeTooSkewed", "ServiceUnavailable", "SlowDown", "Throttling",
    "ThrottlingException",
})  # fmt: skip
# Local file errors retrying cannot fix.
_PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR})


def from_boto(exc: BotoCoreError | ClientError, what: str) -> RoomrecError:
    """The project's error for a boto3 failure on ``what`` (never naming credentials)."""
    from botocore.exceptions import (
        ClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = f"S3 answered {status or '?'} {code} to {what}"
        if code in _TRANSIENT_CODES or status >= 500 or status in (0, 408, 429):
            return TransientError(detail)
        return PermanentError(detail)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentError(f"no usable AWS credentials for {what}")
    if isinstance(exc, ParamValidationError):
        return PermanentError(f"invalid S3 request for {what}: {exc}")
    # Connection refused or dropped, timeouts, an unreachable endpoint.
    return TransientError(f"S3 request failed on {what}: {type(exc).__name__}")


def from_os_error(exc: OSError, what: str) -> RoomrecError:
    """The project's error for a local file-system failure on ``what``; a full disk or an
    I/O error may clear, missing permissions or a read-only file system will not."""
    detail = f"{what} failed: {exc.strerror or type(exc).__name__} (errno {exc.errno})"
    if exc.errno in _PERMANENT_ERRNOS:
        return PermanentError(detail)
    return TransientError(detail)
