"""workers.errors: the one map from an HTTP status or a library's exception to transient or
permanent, and the ``Retry-After`` parser."""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import botocore.exceptions as boto
import pytest
import redis
import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from sqlalchemy import exc as sa_exc

from devtools.processes import REPO
from workers.errors import (
    NotFoundYet,
    PermanentError,
    RoomrecError,
    TargetGone,
    TransientError,
    classify,
    for_status,
    retry_after_seconds,
    translate,
)

# Who answers, and what the status means where: Twilio's API, a forward target, a media URL.
TWILIO = {"lag": True}
FORWARD = {"gone": True, "conflict": True}
MEDIA = {"lag": True, "signed": True}
EVERYWHERE = pytest.mark.parametrize(
    "meaning", [TWILIO, FORWARD, MEDIA, {}], ids=["twilio", "forward", "media", "plain"]
)


def kind_of(status: int, **meaning: bool) -> type[RoomrecError]:
    return type(for_status(status, f"answered {status}", **meaning))


# --- for_status() ------------------------------------------------------------------------------


@EVERYWHERE
@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttling_and_server_errors_are_transient_everywhere(
    status: int, meaning: dict[str, bool]
) -> None:
    assert kind_of(status, **meaning) is TransientError


@EVERYWHERE
@pytest.mark.parametrize("status", [300, 301, 302, 304, 307, 308, 400, 401, 405, 413, 422, 451])
def test_redirects_and_other_client_errors_are_permanent_everywhere(
    status: int, meaning: dict[str, bool]
) -> None:
    assert kind_of(status, **meaning) is PermanentError


@pytest.mark.parametrize(
    ("status", "meaning", "kind"),
    [
        (404, TWILIO, NotFoundYet), (404, MEDIA, NotFoundYet), (404, FORWARD, PermanentError),
        (410, FORWARD, TargetGone), (410, TWILIO, PermanentError), (410, MEDIA, PermanentError),
        (409, FORWARD, TransientError), (409, TWILIO, PermanentError),
        (409, MEDIA, PermanentError),
        (403, MEDIA, TransientError), (403, TWILIO, PermanentError),
        (403, FORWARD, PermanentError),
    ],
)  # fmt: skip
def test_what_a_status_means_depends_on_who_answered(
    status: int, meaning: dict[str, bool], kind: type[RoomrecError]
) -> None:
    assert kind_of(status, **meaning) is kind


def test_the_message_is_the_callers_with_what_the_status_meant() -> None:
    assert str(for_status(503, "forward to X answered 503")) == "forward to X answered 503"
    assert str(for_status(410, "forward to X answered 410", gone=True)) == (
        "forward to X answered 410 Gone"
    )
    assert str(for_status(403, "media answered 403", signed=True)) == (
        "media answered 403: the signed URL expired or was refused"
    )
    assert str(for_status(302, "forward to X answered 302")) == (
        "forward to X answered 302: a redirect, not followed"
    )


def test_target_gone_is_neither_transient_nor_permanent() -> None:
    gone = for_status(410, "answered 410", gone=True)

    assert not isinstance(gone, TransientError | PermanentError)


@pytest.mark.parametrize("status", [408, 425, 429, 503])
def test_a_transient_answer_carries_its_retry_after(status: int) -> None:
    error = for_status(status, "answered", headers=CaseInsensitiveDict({"retry-after": "12"}))

    assert isinstance(error, TransientError)
    assert error.retry_after == 12.0


def test_a_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    error = for_status(429, "answered 429", headers={"Retry-After": when})

    assert isinstance(error, TransientError)
    assert error.retry_after is not None
    assert 115 <= error.retry_after <= 120


@pytest.mark.parametrize(("status", "meaning"), [(404, TWILIO), (403, MEDIA), (409, FORWARD)])
def test_only_throttling_and_server_errors_pass_on_retry_after(
    status: int, meaning: dict[str, bool]
) -> None:
    error = for_status(status, "answered", headers={"Retry-After": "30"}, **meaning)

    assert isinstance(error, TransientError)
    assert error.retry_after == (30.0 if status == 409 else None)


def test_without_a_retry_after_there_is_none() -> None:
    error = for_status(503, "answered 503")

    assert isinstance(error, TransientError)
    assert error.retry_after is None


# --- retry_after_seconds() ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("0", 0.0), ("2.5", 2.5), ("-4", 0.0), ("soon", None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)  # fmt: skip
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    headers = CaseInsensitiveDict({} if value is None else {"Retry-After": value})

    assert retry_after_seconds(headers) == expected


def test_retry_after_seconds_without_headers() -> None:
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_is_found_however_it_is_spelt(header: str) -> None:
    assert retry_after_seconds(CaseInsensitiveDict({header: "3"})) == 3.0


# --- classify() and translate() ----------------------------------------------------------------


def client_error(status: int, code: str) -> boto.ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"},
                     "ResponseMetadata": {"HTTPStatusCode": status}}  # fmt: skip
    return boto.ClientError(response, "PutObject")


def sql_error(kind: type[sa_exc.DBAPIError], text: str) -> sa_exc.DBAPIError:
    return kind("INSERT INTO events VALUES (?)", {"secret": "x"}, sqlite3.Error(text))


def os_error(code: int) -> OSError:
    return OSError(code, errno.errorcode[code])


LIBRARY_ERRORS = [
    # requests: every failure to get an answer is worth another attempt
    (requests.ConnectTimeout("https://h/?sig=s3cr3t"), TransientError),
    (requests.ReadTimeout("https://h/?sig=s3cr3t"), TransientError),
    (requests.ConnectionError("https://h/?sig=s3cr3t"), TransientError),
    (requests.exceptions.ChunkedEncodingError("broken"), TransientError),
    # urllib3 (the workers' Pool): the same, and its text quotes the URL too
    (urllib3.exceptions.NewConnectionError(None, "https://h/?sig=s3cr3t refused"), TransientError),
    (urllib3.exceptions.ConnectTimeoutError(None, "https://h/?sig=s3cr3t"), TransientError),
    (urllib3.exceptions.ReadTimeoutError(None, "https://h/?sig=s3cr3t", "read timed out"),
     TransientError),
    (urllib3.exceptions.ProtocolError("Connection aborted", ConnectionResetError()),
     TransientError),
    (urllib3.exceptions.SSLError("https://h/?sig=s3cr3t: CERTIFICATE_VERIFY_FAILED"),
     TransientError),
    (urllib3.exceptions.ProxyError("https://h/?sig=s3cr3t", OSError()), TransientError),
    # redis: down, hung, out of memory, read-only during a failover
    (redis.ConnectionError("Error 111 connecting"), TransientError),
    (redis.TimeoutError("Timeout reading from socket"), TransientError),
    (redis.exceptions.OutOfMemoryError("OOM command not allowed"), TransientError),
    (redis.exceptions.ReadOnlyError("READONLY"), TransientError),
    # botocore: S3's answers by code and status, then credentials, then the connection
    (client_error(403, "AccessDenied"), PermanentError),
    (client_error(404, "NoSuchBucket"), PermanentError),
    (client_error(400, "InvalidArgument"), PermanentError),
    (client_error(503, "SlowDown"), TransientError),
    (client_error(500, "InternalError"), TransientError),
    (client_error(400, "RequestTimeout"), TransientError),
    (client_error(404, "NoSuchUpload"), TransientError),
    (client_error(429, "TooManyRequests"), TransientError),
    (boto.NoCredentialsError(), PermanentError),
    (boto.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
     PermanentError),
    (boto.ParamValidationError(report="Bucket is missing"), PermanentError),
    (boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), TransientError),
    (boto.ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), TransientError),
    # SQLAlchemy: a locked or unreachable database, or a statement it refuses
    (sql_error(sa_exc.OperationalError, "database is locked"), TransientError),
    (sql_error(sa_exc.InterfaceError, "connection already closed"), TransientError),
    (sa_exc.TimeoutError("QueuePool limit reached"), TransientError),
    (sql_error(sa_exc.IntegrityError, "UNIQUE constraint failed"), PermanentError),
    (sql_error(sa_exc.DataError, "value too long"), PermanentError),
    (sql_error(sa_exc.ProgrammingError, "no such table: events"), PermanentError),
    # the OS: a full disk may clear, a missing permission will not
    (os_error(errno.ENOSPC), TransientError),
    (os_error(errno.EIO), TransientError),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), TransientError),
    (os_error(errno.EACCES), PermanentError),
    (os_error(errno.EROFS), PermanentError),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "kind"), LIBRARY_ERRORS, ids=lambda v: type(v).__name__)
def test_library_errors_are_classified(exc: Exception, kind: type[RoomrecError]) -> None:
    assert classify(exc) is kind


@pytest.mark.parametrize(("exc", "kind"), LIBRARY_ERRORS, ids=lambda v: type(v).__name__)
def test_library_errors_are_translated_naming_what_failed(
    exc: Exception, kind: type[RoomrecError]
) -> None:
    translated = translate(exc, "upload of RT1")

    assert type(translated) is kind
    assert "upload of RT1" in str(translated)
    assert "s3cr3t" not in str(translated)  # a requests error's text quotes its URL
    assert "secret" not in str(translated)  # a statement's parameters


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (requests.ReadTimeout("https://h/"), "forward to h timed out"),
        (requests.ConnectionError("https://h/"), "forward to h failed: ConnectionError"),
        (urllib3.exceptions.ReadTimeoutError(None, "https://h/", "read timed out"),
         "forward to h timed out"),
        (urllib3.exceptions.ConnectTimeoutError(None, "https://h/"), "forward to h timed out"),
        (urllib3.exceptions.NewConnectionError(None, "refused"),
         "forward to h failed: NewConnectionError"),
        (urllib3.exceptions.ProtocolError("Connection aborted"),
         "forward to h failed: ProtocolError"),
        (redis.ConnectionError("Error 111"),
         "Redis failed on forward to h: ConnectionError: Error 111"),
        (client_error(503, "SlowDown"), "S3 answered 503 SlowDown to forward to h"),
        (boto.NoCredentialsError(), "no usable AWS credentials for forward to h"),
        (boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
         "S3 request failed on forward to h: EndpointConnectionError"),
        (sql_error(sa_exc.OperationalError, "database is locked\nmore"),
         "forward to h: database unavailable: Error: database is locked"),
        (sql_error(sa_exc.IntegrityError, "UNIQUE constraint failed"),
         "forward to h: refused by the database: Error: UNIQUE constraint failed"),
        (os_error(errno.ENOSPC), "forward to h failed: ENOSPC (errno 28)"),
    ],
)  # fmt: skip
def test_translated_messages(exc: Exception, message: str) -> None:
    assert str(translate(exc, "forward to h")) == message


def test_errors_the_map_does_not_know_are_not_classified() -> None:
    assert classify(ValueError("x")) is None
    assert classify(sa_exc.InvalidRequestError("a bug, not the database")) is None
    assert classify(KeyError("k")) is None


def test_translating_an_unknown_error_makes_it_transient() -> None:
    translated = translate(ValueError("x"), "reading RT1")

    assert type(translated) is TransientError
    assert str(translated) == "reading RT1 failed: ValueError"


def test_a_package_translates_into_its_own_classes() -> None:
    class Unavailable(TransientError):
        pass

    class Refused(PermanentError):
        pass

    def as_own(exc: Exception) -> RoomrecError:
        return translate(exc, "storing evt_1", transient=Unavailable, permanent=Refused)

    assert type(as_own(sql_error(sa_exc.OperationalError, "locked"))) is Unavailable
    assert type(as_own(sql_error(sa_exc.IntegrityError, "UNIQUE"))) is Refused


def test_the_map_imports_none_of_the_libraries_it_knows() -> None:
    code = (
        "import sys, workers.errors as e\n"
        "e.classify(ValueError()); e.translate(OSError(5, 'EIO'), 'x')\n"
        "print(sorted(m for m in ('requests', 'urllib3', 'redis', 'botocore', 'boto3',"
        " 'sqlalchemy')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip

    assert done.stdout.strip() == "[]"
