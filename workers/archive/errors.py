"""The errors of archive storage. Which boto3/botocore and file-system errors are worth
retrying is decided by :func:`workers.errors.translate`, with every other library's; these
are the archive's own conditions."""

from __future__ import annotations

from workers.errors import Paused, TransientError


class SizeMismatch(TransientError):
    """The bytes received differ in number from the recording's ``size``; staged bytes are
    discarded and the next attempt starts over."""


class ArchivePaused(Paused):
    """An attempt reached its time budget; the staged bytes stay and the next attempt
    resumes where this one stopped."""


class ArchiveBusy(TransientError):
    """Another task is archiving the same recording right now."""
