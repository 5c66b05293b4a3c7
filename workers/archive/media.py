"""Copying a recording's or a composition's media from the signed URL Twilio redirects to
into storage (:class:`MediaCopier`).

The signed URL needs no Twilio credentials and is itself a secret: it never reaches a log or
an error message (errors name the recording, and the URL only through
:func:`workers.observability.redaction.redact`). ``requests`` errors are translated here, without
chaining their text, which quotes the URL. urllib3 logs each request line at DEBUG; a filter strips
query strings from its records.

Answers: 200 (or 206 to a resumed ``Range`` request) streams; 404 is :class:`NotFoundYet`
(still processing); 403 means the signature expired (transient: the next attempt gets a new
URL); 408, 429, 5xx, timeouts and dropped connections are transient; 416 and a length that
differs from the recording's size are :class:`SizeMismatch`; any other answer is permanent.

Redirects are followed here, hop by hop (at most :data:`MAX_REDIRECTS`), never by requests:
every URL, the first included, is checked against the session's
:class:`workers.outbound.policy.OutboundPolicy` before it is requested, and every connection when it
is made. A refused hop is permanent (dead-lettered), named without its query string.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import requests

from workers.archive.errors import ArchivePaused, SizeMismatch
from workers.errors import PermanentError, TransientError, for_status, translate
from workers.observability.metrics import archived_bytes
from workers.outbound.http import GuardedSession
from workers.outbound.policy import DestinationRefused

if TYPE_CHECKING:
    from workers.archive import Storage, Stored

CHUNK_SIZE = 1024 * 1024
CONNECT_TIMEOUT = 10.0
MAX_REDIRECTS = 5  # hops after the signed URL itself (S3 and CDNs use one at most)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_QUERY = re.compile(r"\?[^\s\"']*")

log = logging.getLogger(__name__)


class RedactQueryStrings(logging.Filter):
    """Removes query strings (signatures, tokens) from the arguments of log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY.sub("?<redacted>", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_urllib3_logs() -> None:
    """Install :class:`RedactQueryStrings` on urllib3's loggers that name URLs, once."""
    for name in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())


class MediaDownload:
    """One open download of a recording's media, from byte ``start`` to its ``size``."""

    def __init__(self, response: requests.Response, *, start: int, size: int, what: str):
        self.response = response
        self.start = start
        self.size = size
        self.what = what
        self.received = 0

    def chunks(self, deadline: float, clock: Callable[[], float]) -> Iterator[bytes]:
        """The body in chunks of up to 1 MiB; past ``deadline`` (on ``clock``) the download
        stops with :class:`ArchivePaused` so the attempt ends in time and a later one resumes."""
        try:
            for chunk in self.response.iter_content(CHUNK_SIZE):
                if not chunk:
                    continue
                self.received += len(chunk)
                yield chunk
                if clock() > deadline and self.start + self.received < self.size:
                    raise ArchivePaused(
                        f"{self.what} paused at byte {self.start + self.received} of "
                        f"{self.size} to end this attempt in time; the next one resumes there"
                    )
        except requests.RequestException as exc:
            # Not chained: the text of a requests error quotes the signed URL.
            raise TransientError(
                f"{self.what} broke off after {self.start + self.received} of {self.size} "
                f"bytes: {type(exc).__name__}"
            ) from None

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> MediaDownload:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_media(
    http: GuardedSession, url: str, *, start: int, size: int, timeout: float, what: str
) -> MediaDownload:
    """GET the signed ``url`` (from byte ``start`` when resuming), following its redirects
    within ``http.policy``, checked against ``size``."""
    headers = {"Accept-Encoding": "identity"}  # the stored bytes must be the media's bytes
    if start:
        headers["Range"] = f"bytes={start}-"
    for hop in range(MAX_REDIRECTS + 1):
        response = _get(http, url, headers, timeout=timeout, what=what, hop=hop)
        location = response.headers.get("Location") if response.is_redirect else None
        if location is None:
            break
        response.close()
        url = urljoin(url, location)
    else:
        raise PermanentError(f"{what}: more than {MAX_REDIRECTS} redirects")
    try:
        begin = _check(response, start=start, size=size, what=what)
    except Exception:
        response.close()
        raise
    return MediaDownload(response, start=begin, size=size, what=what)


def _get(
    http: GuardedSession, url: str, headers: dict[str, str], *, timeout: float, what: str,
    hop: int,
) -> requests.Response:  # fmt: skip
    """One hop, its URL and its connection checked by the session's policy."""
    try:
        http.policy.check_url(url)
        return http.get(url, headers=headers, stream=True, allow_redirects=False,
                        timeout=(CONNECT_TIMEOUT, timeout))  # fmt: skip
    except DestinationRefused as exc:
        where = "the signed URL" if hop == 0 else f"redirect {hop}"
        raise PermanentError(f"{what}: {where} refused: {exc}") from None
    except requests.RequestException as exc:  # not chained: its text quotes the signed URL
        raise translate(exc, what) from None


def _check(response: requests.Response, *, start: int, size: int, what: str) -> int:
    """The offset the body starts at, or the error for the answer."""
    status = response.status_code
    if status == 200:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != size:
            raise SizeMismatch(f"{what}: the media has {length} bytes, the recording {size}")
        return 0  # a server that ignores Range sends everything: start over
    if status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != start:
            raise TransientError(f"{what}: unexpected Content-Range for byte {start}")
        if match.group(3) != "*" and int(match.group(3)) != size:
            total = match.group(3)
            raise SizeMismatch(f"{what}: the media has {total} bytes, the recording {size}")
        return start
    detail = f"{what} answered {status}"
    if status == 416:
        raise SizeMismatch(f"{detail}: fewer bytes than the {start} already staged")
    # 404: still processing; 403: the signature expired (the next attempt gets a new URL).
    raise for_status(status, detail, headers=response.headers, lag=True, signed=True)


@dataclass(frozen=True, slots=True)
class MediaCopier:
    """Copies media into ``storage`` within one attempt: streaming for at most ``budget``
    seconds on ``clock``, each read waiting at most ``read_timeout``. What archiving a
    recording and a composition share."""

    storage: Storage
    http: GuardedSession
    clock: Callable[[], float]
    budget: float
    read_timeout: float

    def copy(self, key: str, size: int, media_url: Callable[[], str], *, what: str) -> Stored:
        """Stream the media of ``what`` (e.g. ``recording RT… room=RM…``) at ``media_url()``
        into storage at ``key``, resuming after the bytes an earlier attempt staged and
        committing once all ``size`` bytes are there (asked for only when some are missing).
        A size mismatch discards the staged bytes: the next attempt starts over."""
        began = self.clock()
        download = f"media download of {what}"
        start = self.storage.staged(key)
        try:
            if start >= size:  # every byte was staged by an earlier attempt: commit them
                stored = self.storage.write(key, (), start=start, size=size)
            else:
                with open_media(self.http, media_url(), start=start, size=size, what=download,
                                timeout=self.read_timeout) as media:  # fmt: skip
                    start = media.start
                    chunks = media.chunks(began + self.budget, self.clock)
                    stored = self.storage.write(key, chunks, start=start, size=size)
        except SizeMismatch:
            self.storage.discard(key)
            raise
        archived_bytes(stored.size)
        log.info("archived %s: %d bytes (%d in this attempt) to %s in %.1fs", what, stored.size,
                 stored.size - start, stored.location, self.clock() - began)  # fmt: skip
        return stored
