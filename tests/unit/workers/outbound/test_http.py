"""The workers' HTTP session reads the environment once per host and otherwise settles every
request as requests' own Session does."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread
from typing import Any

import pytest
import requests

from workers.outbound.http import Session

PROXIES = {"HTTPS_PROXY": "http://proxy.example:3128", "HTTP_PROXY": "http://proxy.example:3128"}


def settings(session: requests.Session, url: str, **given: Any) -> dict[str, Any]:
    arguments = {"proxies": {}, "stream": None, "verify": None, "cert": None} | given
    return dict(session.merge_environment_settings(url, **arguments))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variables", "url", "given"),
    [
        ({}, "https://video.twilio.com/v1/Rooms", {}),
        (PROXIES, "https://video.twilio.com/v1/Rooms", {}),
        (PROXIES, "http://hooks.example/in", {}),
        (PROXIES | {"NO_PROXY": "twilio.com"}, "https://video.twilio.com/v1/Rooms", {}),
        (PROXIES | {"NO_PROXY": "twilio.com"}, "https://hooks.example/in", {}),
        (PROXIES, "https://video.twilio.com/", {"proxies": {"https": "http://mine:1"}}),
        (PROXIES, "https://video.twilio.com/", {"proxies": {"no_proxy": "twilio.com"}}),
        (PROXIES, "https://video.twilio.com/", {"proxies": None}),
        ({"REQUESTS_CA_BUNDLE": "/etc/ca.pem"}, "https://video.twilio.com/", {}),
        ({"CURL_CA_BUNDLE": "/etc/curl.pem"}, "https://video.twilio.com/", {}),
        ({"REQUESTS_CA_BUNDLE": "/etc/ca.pem"}, "https://video.twilio.com/", {"verify": False}),
        ({}, "https://video.twilio.com/", {"stream": True, "cert": "/etc/client.pem"}),
    ],
)
def test_each_request_is_settled_as_requests_settles_it(
    environment: pytest.MonkeyPatch, variables: dict[str, str], url: str, given: dict[str, Any]
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    expected = settings(requests.Session(), url, **given)
    assert settings(Session(), url, **given) == expected


def test_session_settings_still_apply(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    ours, theirs = Session(), requests.Session()
    for session in (ours, theirs):
        session.verify = "/etc/session.pem"
        session.proxies = {"http": "http://session-proxy:1"}
    url = "https://video.twilio.com/"
    assert settings(ours, url) == settings(theirs, url)


def test_a_session_that_does_not_trust_the_environment_ignores_it(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ca.pem")
    session = Session()
    session.trust_env = False
    assert settings(session, "https://video.twilio.com/") == {
        "proxies": {}, "stream": False, "verify": True, "cert": None,
    }  # fmt: skip


def test_the_environment_is_read_once_per_host(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = Session()
    first = settings(session, "https://video.twilio.com/v1/Rooms/RM1")
    environment.setenv("HTTPS_PROXY", "http://elsewhere.example:3128")
    # Read already for this host: the worker's environment does not change while it runs.
    assert settings(session, "https://video.twilio.com/v1/Rooms/RM2") == first
    # Another host is looked up when first seen.
    other = settings(session, "https://hooks.example/in")
    assert other["proxies"]["https"] == "http://elsewhere.example:3128"


def test_a_request_through_the_session_reaches_its_target(environment: pytest.MonkeyPatch) -> None:
    # The real path: Session.request hands its arguments to merge_environment_settings.
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    environment.setenv("NO_PROXY", "127.0.0.1")
    server = HTTPServer(("127.0.0.1", 0), Answer)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Session() as session:
            url = f"http://127.0.0.1:{server.server_port}/"
            assert session.get(url, timeout=5).status_code == 204
            assert session.get(url, timeout=5).status_code == 204
    finally:
        server.shutdown()
        server.server_close()
