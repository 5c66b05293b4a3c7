"""Where the archive's media downloads may go, against real HTTP servers on loopback: a server
standing in for Twilio whose ``…/Media`` answers 302 to wherever a test says, and a "secret"
server that must never be reached. The workers' settings here allow no network
(``MEDIA_ALLOWED_NETWORKS`` empty) unless a test says so, so loopback is refused like any
other non-public address."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from werkzeug.wrappers import Request, Response

import workers.pipeline.tasks  # noqa: F401  (registers roomrec.run_handler on every app)
from tests.unit.workers.helpers import LocalServer, recording_event
from workers.archive.media import MAX_REDIRECTS, open_media
from workers.delivery.celery_app import RUN_HANDLER_TASK
from workers.errors import PermanentError
from workers.handlers import HandlerContext
from workers.handlers.archive import ArchiveHandler, media_key
from workers.outbound.http import GuardedSession
from workers.outbound.policy import OutboundPolicy
from workers.runtime.context import Runtime

Start = Callable[..., LocalServer]
MakeContext = Callable[..., HandlerContext]
BODY = bytes(range(256)) * 64  # 16 KiB
SIGNATURE = "Signature=s3cr3t"


def answering(status: int, body: bytes = b"", **headers: str) -> Callable[..., Response]:
    def answer(request: Request, release: threading.Event) -> Response:
        return Response(body, status=status, headers=headers)

    return answer


def redirecting(location: Callable[[Request], str]) -> Callable[..., Response]:
    def answer(request: Request, release: threading.Event) -> Response:
        return Response(b"{}", status=302, headers={"Location": location(request)})

    return answer


@pytest.fixture
def secret(local_server: Start) -> LocalServer:
    """A server on loopback (as an internal service would be) that nothing may reach."""
    return local_server(answering(200, BODY))


def archive_with(
    make_context: MakeContext, twilio: LocalServer, archive: Path, **env: str
) -> ArchiveHandler:
    context = make_context(
        HANDLERS="archive", TWILIO_VIDEO_BASE_URL=twilio.url, ARCHIVE_URL=archive.as_uri(),
        **({"MEDIA_ALLOWED_NETWORKS": ""} | env),
    )  # fmt: skip
    return ArchiveHandler(context)


def files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret?" + SIGNATURE,
        "http://169.254.169.254/latest/meta-data/?" + SIGNATURE,
        "http://[::1]:{port}/secret?" + SIGNATURE,
        "http://[::ffff:127.0.0.1]:{port}/secret?" + SIGNATURE,
        "http://localhost:{port}/secret?" + SIGNATURE,
        "http://0.0.0.0:{port}/secret?" + SIGNATURE,
        "http://10.0.0.1/secret?" + SIGNATURE,
    ],
    ids=["loopback", "metadata", "ipv6-loopback", "ipv4-mapped", "localhost", "unspecified",
         "private"],
)  # fmt: skip
def test_a_redirect_to_a_non_public_address_is_refused(
    make_context: MakeContext, local_server: Start, secret: LocalServer, tmp_path: Path,
    location: str,
) -> None:  # fmt: skip
    port = secret.server.server_port
    twilio = local_server(redirecting(lambda request: location.format(port=port)))
    handler = archive_with(make_context, twilio, tmp_path / "archive")
    event = recording_event(size=len(BODY))

    with pytest.raises(PermanentError, match="signed URL refused") as caught:
        handler(event, None)

    assert secret.seen == []
    assert files(tmp_path / "archive") == []
    assert "s3cr3t" not in str(caught.value)
    assert "MEDIA_ALLOWED_NETWORKS" in str(caught.value)


@pytest.mark.parametrize("bad", ["127.0.0.2", "169.254.169.254"])
def test_the_second_hop_of_a_chain_is_checked(
    make_context: MakeContext, local_server: Start, tmp_path: Path, bad: str
) -> None:
    # The first hop is on the one network the test allows (127.0.0.1/32); its redirect to
    # another address is refused, not tried (a tried one would fail as a transient error).
    first = local_server(redirecting(lambda r: f"http://{bad}:9/secret?{SIGNATURE}"))
    twilio = local_server(redirecting(lambda request: f"{first.url}/hop?{SIGNATURE}"))
    handler = archive_with(make_context, twilio, tmp_path / "archive",
                           MEDIA_ALLOWED_NETWORKS="127.0.0.1/32")  # fmt: skip

    with pytest.raises(PermanentError, match="redirect 1 refused") as caught:
        handler(recording_event(size=len(BODY)), None)

    assert [seen.path for seen in first.seen] == ["/hop"]
    assert f"{bad} is " in str(caught.value)
    assert files(tmp_path / "archive") == []
    assert "s3cr3t" not in str(caught.value)


def test_an_allowed_chain_is_archived_end_to_end(
    make_context: MakeContext, local_server: Start, tmp_path: Path
) -> None:
    media = local_server(answering(200, BODY))
    hop = local_server(redirecting(lambda r: f"{media.url}/media/RT.mkv?{SIGNATURE}"))
    twilio = local_server(redirecting(lambda request: f"{hop.url}/hop?{SIGNATURE}"))
    handler = archive_with(make_context, twilio, tmp_path / "archive",
                           MEDIA_ALLOWED_NETWORKS="127.0.0.0/8")  # fmt: skip
    event = recording_event(size=len(BODY))
    assert event.recording is not None

    handler(event, None)

    stored = tmp_path / "archive" / media_key(event.recording, event.event.room_sid)
    assert stored.read_bytes() == BODY
    assert [seen.path for seen in media.seen] == ["/media/RT.mkv"]


def test_an_endless_chain_stops(local_server: Start) -> None:
    looping = local_server(redirecting(lambda request: request.url))
    policy = OutboundPolicy(frozenset({"http"}), (ipaddress.ip_network("127.0.0.0/8"),))

    with GuardedSession(policy) as http, pytest.raises(PermanentError, match="redirects"):
        open_media(http, looping.url + "/m", start=0, size=1, timeout=5, what="download")

    assert len(looping.seen) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_address_connected_to_is_checked_not_only_the_dns_answer(
    secret: LocalServer, scheme: str
) -> None:
    # DNS rebinding: the check before the request is told the name is public, the connection
    # then reaches loopback. The connect-time check refuses before anything is sent (for
    # https, before the TLS handshake, which would fail otherwise: a transient error).
    policy = OutboundPolicy(frozenset({scheme}), resolver=lambda host, port: ["93.184.216.34"])
    url = f"{scheme}://localhost:{secret.server.server_port}/secret?{SIGNATURE}"

    with GuardedSession(policy) as http, pytest.raises(PermanentError) as caught:
        open_media(http, url, start=0, size=len(BODY), timeout=5, what="download")

    assert "connection to localhost refused: 127.0.0.1 is loopback" in str(caught.value)
    assert secret.seen == []


def test_the_guarded_session_never_follows_a_redirect_itself(
    local_server: Start, secret: LocalServer
) -> None:
    policy = OutboundPolicy(frozenset({"http"}), (ipaddress.ip_network("127.0.0.0/8"),))
    hop = local_server(redirecting(lambda request: secret.url + "/secret"))

    with GuardedSession(policy) as http:
        response = http.get(hop.url + "/hop")  # allow_redirects defaults to True

    assert response.status_code == 302
    assert secret.seen == []


def test_a_refused_redirect_is_dead_lettered_by_the_task(
    redis_url: str, app: Celery, local_server: Start, secret: LocalServer, tmp_path: Path
) -> None:
    from tests.unit.workers.helpers import worker_settings

    port = secret.server.server_port
    twilio = local_server(redirecting(lambda r: f"http://127.0.0.1:{port}/secret?{SIGNATURE}"))
    settings = worker_settings(
        REDIS_URL=redis_url, HANDLERS="archive", TWILIO_VIDEO_BASE_URL=twilio.url,
        ARCHIVE_URL=(tmp_path / "archive").as_uri(), MEDIA_ALLOWED_NETWORKS="",
    )  # fmt: skip
    rt = Runtime.build(settings, app)
    app._roomrec_runtime = rt  # what runtime(app) builds in a worker process
    event = recording_event(size=len(BODY))

    app.tasks[RUN_HANDLER_TASK]("archive", None, event.to_json())

    [entry] = rt.dead_letters.list()
    assert entry["stage"] == "handler:archive" and entry["attempts"] == 1
    assert "signed URL refused" in entry["error"] and "s3cr3t" not in entry["error"]
    assert secret.seen == []
    assert files(tmp_path / "archive") == []
    rt.redis.close()
