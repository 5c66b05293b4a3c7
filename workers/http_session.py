"""The workers' HTTP session: requests' own, reading the environment once per host.

requests looks in the environment on every request of a session that trusts it (the default):
the proxies (``HTTPS_PROXY``, ``NO_PROXY`` ...) by walking ``os.environ`` twice, and the CA
bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``). That cost about 0.1 ms of CPU per request
here, with a few dozen variables: a sixth of a keep-alive request to a local target. A
worker's environment does not change while it runs, so :class:`Session` looks once per scheme
and host, with requests' own functions, and merges the result as requests does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

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
