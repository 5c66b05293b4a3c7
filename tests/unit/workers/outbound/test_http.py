"""The workers' HTTP clients read the environment once per host: the requests Session (media)
settles every request as requests' own Session does; the urllib3 Pool (Twilio, the forward)
keeps its connections, goes through the proxy requests would pick, and verifies with the CA
bundle the environment names."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from threading import Thread
from typing import Any

import certifi
import pytest
import requests
import urllib3

from workers.outbound.http import Pool, Session, ca_bundle, userinfo_auth

PROXIES = {"HTTPS_PROXY": "http://proxy.example:3128", "HTTP_PROXY": "http://proxy.example:3128"}


def settings(session: requests.Session, url: str, **given: Any) -> dict[str, Any]:
    arguments = {"proxies": {}, "stream": None, "verify": None, "cert": None} | given
    return dict(session.merge_environment_settings(url, **arguments))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "SSL_CERT_FILE"):  # fmt: skip
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


# --- Pool: urllib3 for the hot requests --------------------------------------------------------

Recorded = tuple[str, list[tuple[str, str, dict[str, str]]]]


class Recorder(BaseHTTPRequestHandler):
    """Answers 204 to anything, noting each request line and its headers (names in lower
    case): a target, or a plain HTTP proxy (which sees the absolute URL, or a CONNECT)."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str]]]

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(502 if self.command == "CONNECT" else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_CONNECT = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorded]:
    seen: list[tuple[str, str, dict[str, str]]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a kept-alive connection does not hold the shutdown
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_the_pool_reuses_its_connection(
    recorder: Recorded, environment: pytest.MonkeyPatch
) -> None:
    url, seen = recorder
    pool = Pool()
    for _ in range(3):
        assert pool.request("GET", f"{url}/a", headers={}, timeout=5).status == 204
    connection_pool = pool.manager(url).connection_from_url(url)
    assert connection_pool.num_connections == 1  # one keep-alive connection for the three
    assert [(method, path) for method, path, _ in seen] == [("GET", "/a")] * 3
    pool.close()


def test_a_proxy_from_the_environment_carries_the_request(
    recorder: Recorded, environment: pytest.MonkeyPatch
) -> None:
    proxy, seen = recorder
    environment.setenv("HTTP_PROXY", proxy.replace("http://", "http://me:pa%40ss@"))
    pool = Pool()
    target = "http://hooks.example/in?token=t"

    assert pool.request("POST", target, headers={}, body=b"{}", timeout=5).status == 204

    [(method, path, headers)] = seen
    assert (method, path) == ("POST", target)  # the absolute URL: the proxy's to reach
    expected = base64.b64encode(b"me:pa@ss").decode()
    assert headers["proxy-authorization"] == f"Basic {expected}"
    assert pool.manager(target) is pool.manager("http://hooks.example/other")  # once per host
    pool.close()


def test_an_https_target_is_tunnelled_through_the_proxy(
    recorder: Recorded, environment: pytest.MonkeyPatch
) -> None:
    proxy, seen = recorder
    environment.setenv("HTTPS_PROXY", proxy)
    pool = Pool()

    with pytest.raises(urllib3.exceptions.ProxyError):  # the recorder refuses the tunnel
        pool.request("GET", "https://video.twilio.com/v1/Rooms", headers={}, timeout=5)

    [(method, path, _)] = seen
    assert (method, path) == ("CONNECT", "video.twilio.com:443")
    pool.close()


def test_no_proxy_goes_direct(recorder: Recorded, environment: pytest.MonkeyPatch) -> None:
    url, seen = recorder
    environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    environment.setenv("NO_PROXY", "127.0.0.1")

    pool = Pool()
    assert pool.request("GET", f"{url}/direct", headers={}, timeout=5).status == 204

    assert [path for _, path, _ in seen] == ["/direct"]
    pool.close()


@pytest.mark.parametrize(
    ("variables", "url"),
    [
        ({}, "https://video.twilio.com/v1/Rooms"),
        (PROXIES, "https://video.twilio.com/v1/Rooms"),
        (PROXIES, "http://hooks.example/in"),
        (PROXIES | {"NO_PROXY": "twilio.com"}, "https://video.twilio.com/v1/Rooms"),
        (PROXIES | {"NO_PROXY": "twilio.com"}, "https://hooks.example/in"),
        ({"ALL_PROXY": "proxy.example:3128"}, "https://hooks.example/in"),
        ({"HTTPS_PROXY": "https://proxy.example:3129"}, "https://hooks.example/in"),
    ],
)
def test_the_pool_picks_the_proxy_requests_would_pick(
    environment: pytest.MonkeyPatch, variables: dict[str, str], url: str
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    with requests.Session() as session:
        theirs = requests.utils.select_proxy(url, session.rebuild_proxies(
            requests.Request("GET", url).prepare(), {}
        ))  # fmt: skip
    manager = Pool().manager(url)

    if theirs is None:
        assert not isinstance(manager, urllib3.ProxyManager)
    else:
        assert isinstance(manager, urllib3.ProxyManager)
        expected = urllib3.util.parse_url(requests.utils.prepend_scheme_if_needed(theirs, "http"))
        assert (manager.proxy.scheme, manager.proxy.host, manager.proxy.port) == (
            expected.scheme, expected.host, expected.port,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"REQUESTS_CA_BUNDLE": "/etc/ca.pem", "SSL_CERT_FILE": "/etc/ssl.pem"},
         {"ca_certs": "/etc/ca.pem"}),
        ({"CURL_CA_BUNDLE": "/etc/curl.pem"}, {"ca_certs": "/etc/curl.pem"}),
        ({"SSL_CERT_FILE": "/etc/ssl.pem"}, {"ca_certs": "/etc/ssl.pem"}),
        ({"REQUESTS_CA_BUNDLE": "/"}, {"ca_cert_dir": "/"}),
        ({}, {"ca_certs": certifi.where()}),
    ],
)  # fmt: skip
def test_the_ca_bundle_follows_the_environment(
    variables: dict[str, str], expected: dict[str, str]
) -> None:
    assert ca_bundle(variables) == expected
    pool = Pool(variables)
    assert {key: pool.manager("https://h/").connection_pool_kw[key] for key in expected} == expected
    assert pool.manager("https://h/").connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"


@pytest.mark.parametrize(
    ("url", "bare", "credentials"),
    [
        ("https://hooks.example/in", "https://hooks.example/in", None),
        ("https://me:s%40cret@hooks.example:8443/in?x=1", "https://hooks.example:8443/in?x=1",
         "me:s@cret"),
        ("https://:only-password@hooks.example/in", "https://hooks.example/in", ":only-password"),
        ("https://only-user@hooks.example/in", "https://hooks.example/in", None),
    ],
)  # fmt: skip
def test_userinfo_becomes_the_basic_credentials_requests_would_send(
    url: str, bare: str, credentials: str | None
) -> None:
    found, headers = userinfo_auth(url)

    assert found == bare
    theirs = requests.Request("POST", url).prepare().headers.get("Authorization")
    assert headers.get("authorization") == theirs
    if credentials is not None:
        assert (
            headers["authorization"] == "Basic " + base64.b64encode(credentials.encode()).decode()
        )
