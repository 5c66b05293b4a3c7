"""The workers' HTTP clients: :class:`Pool` (urllib3) for the requests of every event, and
requests' :class:`Session` for the media downloads.

:class:`Pool` carries the two requests every ``recording-completed`` costs, the fetch of its
RoomRecording from Twilio (:mod:`workers.twilio.client`) and the forward's POST
(:mod:`workers.handlers.forward`), and the other Twilio calls. It is urllib3's
``PoolManager`` with keep-alive connections, about 0.4 ms of CPU less per request than
requests here: no ``PreparedRequest``, no hooks, no cookie jar, no adapter. What requests
would take from the environment it takes too, once per scheme and host: the proxies
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, with requests' own functions,
through a ``ProxyManager`` per proxy) and the CA bundle (``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``, then OpenSSL's ``SSL_CERT_FILE``, else certifi's). It never retries nor
follows a redirect: each caller decides what an answer means (:func:`workers.errors.for_status`)
and what a failure is (:func:`workers.errors.translate` knows urllib3's exceptions). One per
worker process, built after the fork with the process' runtime
(:class:`workers.runtime.context.Runtime`): sockets do not survive a fork.

requests looks in the environment on every request of a session that trusts it (the default):
the proxies by walking ``os.environ`` twice, and the CA bundle. That cost about 0.1 ms of CPU
per request here, with a few dozen variables. A worker's environment does not change while it
runs, so :class:`Session` looks once per scheme and host, with requests' own functions, and
merges the result as requests does.

:class:`GuardedSession` (media downloads) also checks the address of every connection it
makes against a :class:`workers.outbound.policy.OutboundPolicy`, at connect time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import (
    get_auth_from_url,
    get_environ_proxies,
    prepend_scheme_if_needed,
    select_proxy,
)
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import make_headers

from workers.outbound.policy import OutboundPolicy

if TYPE_CHECKING:
    from requests.sessions import _Settings


class Session(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._environ_proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        # requests.Session.merge_environment_settings, with the environment read once.
        if self.trust_env:
            if proxies is not None:
                for name, proxy in self.environ_proxies(url, proxies.get("no_proxy")).items():
                    proxies.setdefault(name, proxy)
            if verify is True or verify is None:
                verify = self._ca_bundle or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }

    def environ_proxies(self, url: str, no_proxy: str | None) -> dict[str, str]:
        """The environment's proxies for ``url``'s scheme and host (none when it bypasses)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        found = self._environ_proxies.get(key)
        if found is None:  # threads may both look it up: the same answer, no harm
            found = self._environ_proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        return found


POOLS = 10  # hosts kept, each with its connections (requests' defaults)
CONNECTIONS = 10  # idle connections kept per host: one per thread that may use it at once


def ca_bundle(environ: Mapping[str, str]) -> dict[str, str]:
    """urllib3's CA settings from ``environ``: requests' variables first, then OpenSSL's
    ``SSL_CERT_FILE``, else certifi's bundle (requests' default); a directory is a
    ``ca_cert_dir``."""
    path = (
        environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE")
        or environ.get("SSL_CERT_FILE") or certifi.where()
    )  # fmt: skip
    return {"ca_cert_dir": path} if os.path.isdir(path) else {"ca_certs": path}


def userinfo_auth(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its userinfo, and the HTTP Basic ``Authorization`` header requests would
    send for that userinfo (none when it names neither a user nor a password)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    username, password = get_auth_from_url(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if not (username or password):
        return bare, {}
    return bare, make_headers(basic_auth=f"{username}:{password}")


class Pool:
    """Keep-alive connections per host through urllib3, as described above. Thread-safe, as
    urllib3's pools are. ``environ`` is read for the CA bundle; the proxies come from the
    process' environment (requests reads ``os.environ`` itself)."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._options: dict[str, Any] = {
            "num_pools": POOLS, "maxsize": CONNECTIONS, "retries": False,
            "cert_reqs": "CERT_REQUIRED", **ca_bundle(environ),
        }  # fmt: skip
        self._direct = urllib3.PoolManager(**self._options)
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._routes: dict[tuple[str, str], urllib3.PoolManager] = {}

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], timeout: float,
        body: bytes | None = None,
    ) -> urllib3.BaseHTTPResponse:  # fmt: skip
        """One request, its answer read whole (the connection goes back to the pool). Never
        retried, redirects not followed; ``timeout`` bounds the connect and each read. A
        userinfo in ``url`` is not sent (see :func:`userinfo_auth`). Raises urllib3's
        exceptions (``urllib3.exceptions.HTTPError``) and ``OSError``."""
        return self.manager(url).request(
            method, url, body=body, headers=headers, timeout=timeout, retries=False,
            redirect=False,
        )  # fmt: skip

    def manager(self, url: str) -> urllib3.PoolManager:
        """The pools ``url`` goes through: direct, or its proxy's (looked up once per scheme and
        host, as requests picks one: ``get_environ_proxies``, ``select_proxy``)."""
        parts = urlsplit(url)
        route = (parts.scheme, parts.netloc)
        found = self._routes.get(route)
        if found is None:  # threads may both look it up: the same answer, no harm
            proxy = select_proxy(url, get_environ_proxies(url))
            found = self._routes[route] = self._direct if not proxy else self._proxy(proxy)
        return found

    def _proxy(self, proxy: str) -> urllib3.ProxyManager:
        found = self._proxied.get(proxy)
        if found is None:
            url = prepend_scheme_if_needed(proxy, "http")
            username, password = get_auth_from_url(url)
            headers = make_headers(proxy_basic_auth=f"{username}:{password}") if username else {}
            found = self._proxied[proxy] = urllib3.ProxyManager(
                url, proxy_headers=headers, **self._options
            )
        return found

    def close(self) -> None:
        """Close every idle connection."""
        self._direct.clear()
        for manager in self._proxied.values():
            manager.clear()


# --- Guarded sessions: every connection checked against an outbound policy ----------------


def _peer_checked(sock: socket.socket, host: str, policy: OutboundPolicy) -> socket.socket:
    """``sock`` if the address it is connected to is allowed; else it is closed and refused."""
    try:
        policy.check_peer(str(sock.getpeername()[0]), host)
    except BaseException:
        sock.close()
        raise
    return sock


class _GuardedHTTPConnection(HTTPConnection):
    policy: ClassVar[OutboundPolicy]

    def _new_conn(self) -> socket.socket:
        return _peer_checked(super()._new_conn(), self.host, self.policy)


class _GuardedHTTPSConnection(HTTPSConnection):
    policy: ClassVar[OutboundPolicy]

    def _new_conn(self) -> socket.socket:  # before the TLS handshake: nothing is sent yet
        return _peer_checked(super()._new_conn(), self.host, self.policy)


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose direct connections are checked by ``policy`` once connected:
    the address checked is the one the socket reached, whatever DNS answered before.

    Connections to a proxy (``HTTPS_PROXY`` ...) are the operator's and are not checked; the
    target behind it is still checked by :meth:`OutboundPolicy.check_url` before each
    request, and the proxy resolves the name itself."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        attributes = {"policy": self.policy}
        http = type("GuardedHTTPConnection", (_GuardedHTTPConnection,), attributes)
        https = type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), attributes)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,),
                         {"ConnectionCls": http}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": https}),
        }  # fmt: skip


class GuardedSession(Session):
    """A :class:`Session` whose every direct connection is checked by ``policy``, and which
    never follows a redirect itself: callers follow them hop by hop, checking each
    ``Location`` with ``policy.check_url`` (see :func:`workers.archive.media.open_media`)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self.policy = policy
        for prefix in ("http://", "https://"):
            self.mount(prefix, GuardedAdapter(policy))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # requests would follow a redirect without checking its Location first: never here.
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)
