"""The workers' HTTP session: requests' own, reading the environment once per host.

requests looks in the environment on every request of a session that trusts it (the default):
the proxies (``HTTPS_PROXY``, ``NO_PROXY`` ...) by walking ``os.environ`` twice, and the CA
bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``). That cost about 0.1 ms of CPU per request
here, with a few dozen variables: a sixth of a keep-alive request to a local target. A
worker's environment does not change while it runs, so :class:`Session` looks once per scheme
and host, with requests' own functions, and merges the result as requests does.

:class:`GuardedSession` (media downloads) also checks the address of every connection it
makes against a :class:`workers.outbound.policy.OutboundPolicy`, at connect time.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
