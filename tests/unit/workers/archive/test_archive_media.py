"""Reading media from a signed URL (and asking Twilio for it), against real HTTP servers on
loopback: each answer becomes a chunk stream, a transient or a permanent error."""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from tests.unit.workers.helpers import LocalServer, worker_settings
from workers.archive import ArchivePaused, SizeMismatch
from workers.archive.media import RedactQueryStrings, open_media
from workers.errors import NotFoundYet, PermanentError, TransientError
from workers.outbound.http import GuardedSession
from workers.outbound.policy import OutboundPolicy
from workers.twilio.client import TwilioVideo

Start = Callable[..., LocalServer]
BODY = bytes(range(256)) * 4096  # 1 MiB
SIGNED = "/media/RT1.mkv?Expires=1999999999&Signature=s3cr3t"
# These servers are on loopback: allowed here (tests/unit/workers/archive/test_media_redirects.py
# checks what is refused).
LOOPBACK = OutboundPolicy(frozenset({"http"}), (ipaddress.ip_network("127.0.0.0/8"),))


def answering(status: int, body: bytes = b"", **headers: str) -> Callable[..., Response]:
    def answer(request: Request, release: threading.Event) -> Response:
        return Response(body, status=status, headers=headers)

    return answer


def ranged(request: Request, release: threading.Event) -> Response:
    """Serves BODY, honouring a single ``Range: bytes=N-``."""
    if request.range is None:
        return Response(BODY, status=200)
    start, stop = request.range.range_for_length(len(BODY)) or (0, len(BODY))
    return Response(BODY[start:stop], status=206,
                    headers={"Content-Range": f"bytes {start}-{stop - 1}/{len(BODY)}"})  # fmt: skip


def fetch(url: str, *, start: int = 0, size: int = len(BODY)) -> bytes:
    with GuardedSession(LOOPBACK) as http:
        with open_media(http, url, start=start, size=size, timeout=5, what="download") as media:
            return b"".join(media.chunks(float("inf"), lambda: 0.0))


def test_the_whole_body_streams(local_server: Start) -> None:
    server = local_server(ranged)

    assert fetch(server.url + SIGNED) == BODY
    assert server.seen[0].headers["Accept-Encoding"] == "identity"
    assert "Range" not in server.seen[0].headers


def test_a_resumed_download_asks_for_the_rest(local_server: Start) -> None:
    server = local_server(ranged)

    assert fetch(server.url + SIGNED, start=1000) == BODY[1000:]
    assert server.seen[0].headers["Range"] == "bytes=1000-"


def test_a_server_ignoring_range_restarts_from_zero(local_server: Start) -> None:
    server = local_server(answering(200, BODY))

    with GuardedSession(LOOPBACK) as http:
        media = open_media(http, server.url + SIGNED, start=1000, size=len(BODY), timeout=5,
                           what="download")  # fmt: skip
        with media:
            assert media.start == 0
            assert b"".join(media.chunks(float("inf"), lambda: 0.0)) == BODY


@pytest.mark.parametrize(
    ("answer", "start", "error"),
    [
        (answering(200, BODY[:-1]), 0, SizeMismatch),
        (answering(206, BODY[10:], **{"Content-Range": f"bytes 10-{len(BODY) - 1}/9"}), 10,
         SizeMismatch),
        (answering(206, BODY[20:], **{"Content-Range": f"bytes 20-{len(BODY) - 1}/{len(BODY)}"}),
         10, TransientError),
        (answering(416), 10, SizeMismatch),
        (answering(404), 0, NotFoundYet),
        (answering(403), 0, TransientError),
        (answering(503, **{"Retry-After": "7"}), 0, TransientError),
        (answering(429), 0, TransientError),
        (answering(401), 0, PermanentError),
        (answering(400), 0, PermanentError),
    ],
    ids=["short", "other-total", "wrong-range", "416", "404", "403", "503", "429", "401", "400"],
)  # fmt: skip
def test_answers_become_errors(
    local_server: Start, answer: Any, start: int, error: type[Exception]
) -> None:
    server = local_server(answer)

    with pytest.raises(error) as caught:
        fetch(server.url + SIGNED, start=start)

    assert type(caught.value) is error
    assert "s3cr3t" not in str(caught.value)


def test_retry_after_is_kept(local_server: Start) -> None:
    server = local_server(answering(503, **{"Retry-After": "7"}))

    with pytest.raises(TransientError) as caught:
        fetch(server.url + SIGNED)

    assert caught.value.retry_after == 7


def test_a_stalled_body_times_out_as_transient(local_server: Start) -> None:
    def stall(request: Request, release: threading.Event) -> Response:
        def body() -> Any:
            yield BODY[:1000]
            release.wait(10)
            yield BODY[1000:]

        return Response(body(), status=200, headers={"Content-Length": str(len(BODY))})

    server = local_server(stall)

    with GuardedSession(LOOPBACK) as http:
        media = open_media(http, server.url + SIGNED, start=0, size=len(BODY), timeout=0.3,
                           what="download of RT1")  # fmt: skip
        with media, pytest.raises(TransientError, match="broke off after") as caught:
            b"".join(media.chunks(float("inf"), lambda: 0.0))
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.__suppress_context__  # the requests error quoting the URL is hidden


def test_an_unreachable_url_is_transient_and_not_quoted(local_server: Start) -> None:
    server = local_server(answering(200))
    url = server.url + SIGNED
    server.stop()

    with pytest.raises(TransientError) as caught:
        fetch(url)
    assert "s3cr3t" not in str(caught.value)


def test_the_download_pauses_past_its_deadline(local_server: Start) -> None:
    big = BODY * 4
    server = local_server(answering(200, big))
    ticks = iter(range(100))

    with GuardedSession(LOOPBACK) as http:
        with open_media(http, server.url + SIGNED, start=0, size=len(big), timeout=5,
                        what="download") as media:  # fmt: skip
            received = bytearray()
            with pytest.raises(ArchivePaused, match="paused at byte"):
                for chunk in media.chunks(1.5, lambda: float(next(ticks))):
                    received += chunk
    assert 0 < len(received) < len(big)
    assert bytes(received) == big[: len(received)]


def test_query_strings_are_redacted_from_log_records() -> None:
    record = logging.LogRecord(
        "urllib3.connectionpool", logging.DEBUG, __file__, 1, '%s://%s:%s "%s %s %s" %s %s',
        ("https", "host", 443, "GET", SIGNED, "HTTP/1.1", 200, 10), None,
    )  # fmt: skip

    assert RedactQueryStrings().filter(record)

    assert "s3cr3t" not in record.getMessage()
    assert "/media/RT1.mkv?<redacted>" in record.getMessage()


# --- TwilioVideo.media_url / delete_recording ---------------------------------------------------


def twilio_at(server: LocalServer) -> TwilioVideo:
    return TwilioVideo(worker_settings(TWILIO_VIDEO_BASE_URL=server.url))


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"Location": "https://s3.example.com/m?X-Amz-Signature=1"}, "{}"),
     ({}, '{"redirect_to": "https://s3.example.com/m?X-Amz-Signature=1"}')],
)  # fmt: skip
def test_media_url_takes_location_or_redirect_to(
    local_server: Start, headers: dict[str, str], body: str
) -> None:
    server = local_server(answering(302, body.encode(), **headers))

    url = twilio_at(server).media_url("RM1", "RT1")

    assert url == "https://s3.example.com/m?X-Amz-Signature=1"
    assert server.seen[0].path == "/v1/Rooms/RM1/Recordings/RT1/Media"  # not followed


def test_media_url_without_a_url_is_permanent(local_server: Start) -> None:
    server = local_server(answering(302, b"{}"))

    with pytest.raises(PermanentError, match="without a URL"):
        twilio_at(server).media_url("RM1", "RT1")


@pytest.mark.parametrize(("status", "deleted"), [(204, True), (404, False)])
def test_delete_recording(local_server: Start, status: int, deleted: bool) -> None:
    server = local_server(answering(status))

    assert twilio_at(server).delete_recording("RM1", "RT1") is deleted
    assert (server.seen[0].method, server.seen[0].path) == (
        "DELETE",
        "/v1/Rooms/RM1/Recordings/RT1",
    )
