"""The errors of the worker side, and the one map from a failure to what is done about it.

Tasks only decide: retry, or give up. So every failure becomes one of these classes here, in
one place: an HTTP answer's status (:func:`for_status`, with :func:`retry_after_seconds` for
its ``Retry-After``), and the exceptions of requests, urllib3, redis, botocore, SQLAlchemy and
the OS (:func:`classify`, :func:`translate`).

No library is imported here. An exception of a library that was never imported cannot have
been raised, so each class is looked up in :data:`sys.modules`: a worker without a store or an
S3 archive never loads SQLAlchemy or boto3 on this module's account (see the start-up
footprint test).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


class RoomrecError(Exception):
    """Base of every error roomrec raises on purpose."""


class TransientError(RoomrecError):
    """Worth retrying later: a timeout, a 429, a 5xx, a dropped connection."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(RoomrecError):
    """Retrying cannot help: bad credentials, a refused request, an invalid resource."""


class Paused(TransientError):
    """Work made progress and stopped at its time budget: continue at once, in a new task,
    without counting a failed attempt."""


class TargetGone(RoomrecError):
    """The receiver wants no more of this event (HTTP 410): stop, without a dead letter."""


class NotFoundYet(TransientError):
    """Twilio answered 404 for something a callback said exists; it may appear shortly."""


class BrokerUnavailable(RoomrecError):
    """The queue could not take the event in time."""


class UnknownHandlerError(RoomrecError, LookupError):
    """``HANDLERS`` names a handler that is neither built in nor importable."""


Kind = type[TransientError] | type[PermanentError]

# --- HTTP answers ------------------------------------------------------------------------------

TRANSIENT_STATUSES = frozenset({408, 425, 429})  # and every 5xx


def for_status(
    status: int, detail: str, *, headers: Mapping[str, Any] | None = None, lag: bool = False,
    gone: bool = False, conflict: bool = False, signed: bool = False,
) -> RoomrecError:  # fmt: skip
    """The error for an answer with ``status`` that the caller does not take as a success;
    ``detail`` is its message (who answered what, with the status).

    For every caller 408, 425, 429 and 5xx are transient, with the answer's ``Retry-After``
    (from ``headers``); a redirect (none is followed here) and any other 4xx are permanent.
    Where what answered changes the meaning:

    - ``lag``: 404 is :class:`NotFoundYet`: a resource a callback announced may not be there
      yet (Twilio's API, a media URL). Elsewhere (a forward target) it is permanent.
    - ``gone``: 410 is :class:`TargetGone`, a webhook receiver's "no more of this event".
    - ``conflict``: 409 is transient: a webhook receiver busy with the same ``webhook-id``.
    - ``signed``: 403 is transient: the URL's signature expired, the next attempt gets a new
      URL. Elsewhere 403 refuses the credentials.
    """
    if status == 404 and lag:
        return NotFoundYet(detail)
    if status == 410 and gone:
        return TargetGone(f"{detail} Gone")
    if status == 403 and signed:
        return TransientError(f"{detail}: the signed URL expired or was refused")
    if status in TRANSIENT_STATUSES or status >= 500 or (status == 409 and conflict):
        return TransientError(detail, retry_after=retry_after_seconds(headers))
    if 300 <= status < 400:
        return PermanentError(f"{detail}: a redirect, not followed")
    return PermanentError(detail)


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if any; a case
    insensitive mapping (requests', urllib3's, twilio's) finds it however it was spelt."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


# --- library exceptions ------------------------------------------------------------------------

# S3 error codes worth another attempt; any other 4xx (AccessDenied, NoSuchBucket, ...) is not.
S3_TRANSIENT_CODES = frozenset({
    "BadDigest", "InternalError", "NoSuchUpload", "OperationAborted", "RequestTimeout",
    "RequestTimeTooSkewed", "ServiceUnavailable", "SlowDown", "Throttling",
    "ThrottlingException",
})  # fmt: skip
# Local file errors retrying cannot fix; a full disk or an I/O error may clear.
PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR})


def classify(exc: BaseException) -> Kind | None:
    """:class:`TransientError` or :class:`PermanentError` for an exception of requests, urllib3,
    redis, botocore, SQLAlchemy or the OS; None for one this map does not know."""
    found = _mapped(exc, "")
    return None if found is None else found[0]


def translate(
    exc: BaseException, what: str, *, transient: type[TransientError] = TransientError,
    permanent: type[PermanentError] = PermanentError,
) -> RoomrecError:  # fmt: skip
    """The project's error for ``exc``, raised by ``what`` (``raise translate(…) from exc``),
    as ``transient`` or ``permanent`` (a package's own subclasses). The message names ``what``
    and the failure, never a secret: no credentials, and for requests and urllib3 not the
    error's text (it quotes the URL, which may be signed). One the map does not know is
    transient."""
    kind, message = _mapped(exc, what) or (TransientError, f"{what} failed: {_name(exc)}")
    return transient(message) if kind is TransientError else permanent(message)


def _mapped(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    # botocore first: some of its errors are OSErrors too (its vendored requests').
    for family in (_botocore, _sqlalchemy, _requests, _urllib3, _redis, _os):
        found = family(exc, what)
        if found is not None:
            return found
    return None


def _botocore(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    if _is(exc, "botocore.exceptions", "ClientError"):
        answer: Any = getattr(exc, "response", {})
        code = str(answer.get("Error", {}).get("Code", "?"))
        status = int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        transient = code in S3_TRANSIENT_CODES or status >= 500 or status in (0, 408, 429)
        return (TransientError if transient else PermanentError,
                f"S3 answered {status or '?'} {code} to {what}")  # fmt: skip
    if _is(exc, "botocore.exceptions", "NoCredentialsError", "PartialCredentialsError"):
        return PermanentError, f"no usable AWS credentials for {what}"
    if _is(exc, "botocore.exceptions", "ParamValidationError"):
        return PermanentError, f"invalid S3 request for {what}: {exc}"
    if _is(exc, "botocore.exceptions", "BotoCoreError"):  # refused, dropped, timed out
        return TransientError, f"S3 request failed on {what}: {_name(exc)}"
    return None


def _sqlalchemy(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    # A locked or unreachable database is worth retrying; a statement it refuses is not.
    if _is(exc, "sqlalchemy.exc", "OperationalError", "InterfaceError", "TimeoutError"):
        return TransientError, f"{what}: database unavailable: {_driver_reason(exc)}"
    if _is(exc, "sqlalchemy.exc", "IntegrityError", "DataError", "ProgrammingError"):
        return PermanentError, f"{what}: refused by the database: {_driver_reason(exc)}"
    return None


def _requests(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    if _is(exc, "requests.exceptions", "Timeout"):
        return TransientError, f"{what} timed out"
    if _is(exc, "requests.exceptions", "RequestException"):  # refused, dropped, unreadable
        return TransientError, f"{what} failed: {_name(exc)}"
    return None


def _urllib3(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    # Refused or unresolved: a NewConnectionError, which urllib3 derives from
    # ConnectTimeoutError for compatibility, though nothing timed out.
    if _is(exc, "urllib3.exceptions", "NewConnectionError"):
        return TransientError, f"{what} failed: {_name(exc)}"
    if _is(exc, "urllib3.exceptions", "TimeoutError"):  # connect or read
        return TransientError, f"{what} timed out"
    if _is(exc, "urllib3.exceptions", "HTTPError"):  # dropped, unreadable, TLS, proxy
        return TransientError, f"{what} failed: {_name(exc)}"
    return None


def _redis(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    if _is(exc, "redis.exceptions", "RedisError"):  # down, hung, out of memory, failing over
        return TransientError, f"Redis failed on {what}: {_name(exc)}: {exc}"
    return None


def _os(exc: BaseException, what: str) -> tuple[Kind, str] | None:
    if not isinstance(exc, OSError):
        return None
    detail = f"{what} failed: {exc.strerror or _name(exc)} (errno {exc.errno})"
    return PermanentError if exc.errno in PERMANENT_ERRNOS else TransientError, detail


def _is(exc: BaseException, module: str, *names: str) -> bool:
    """Whether ``exc`` is one of the classes ``names`` of ``module``, if it was imported."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, tuple(getattr(loaded, n) for n in names))


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _driver_reason(exc: BaseException) -> str:
    # The driver's own message: never the URL (hence never a password), no parameters.
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return f"{_name(original or exc)}: {text[0] if text else ''}"
