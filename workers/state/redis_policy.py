"""Whether Redis may evict roomrec's keys: its ``maxmemory-policy`` must be ``noeviction``.

Under any other policy a Redis that reaches ``maxmemory`` drops keys to make room, silently:
de-duplication marks (a callback Twilio resends is processed again), done marks, the in-flight
ledger and delayed retries (lost messages are no longer found), and with ``allkeys-*`` the
queues themselves. With ``noeviction`` Redis refuses writes instead (``OOM command not
allowed``), which the web answers by spooling the callback.

The web warns once at start-up and reports the policy on ``/readyz`` (cached, so the probe
stays cheap); a worker warns once it is ready (:mod:`workers.delivery.celery_app`). Neither refuses
to
start over it, nor when Redis is down: the policy is then read on the next occasion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis

from schemas.settings import RedisSentinel
from workers.state.redis_client import is_sentinel_url, parse_sentinel_url, redis_client

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"
CACHE_SECONDS = 60.0
# What can read a policy: Redis URLs, and Sentinel ones given the master's name (on the master
# the sentinels name at the time; a RabbitMQ broker is not checked).
_SCHEMES = frozenset({"redis", "rediss", "unix"})


def read_policy(client: redis.Redis) -> str | None:
    """The server's ``maxmemory-policy``: ``CONFIG GET``, else ``INFO memory`` where CONFIG is
    renamed or not permitted (managed Redis); None when neither tells. A Redis that does not
    answer raises :class:`redis.RedisError` (a connection error or timeout)."""
    value: Any = None
    try:
        reply: Mapping[Any, Any] = client.config_get("maxmemory-policy")
        value = reply.get("maxmemory-policy", reply.get(b"maxmemory-policy"))
    except redis.ResponseError:  # unknown command (renamed), NOPERM (ACL): not an outage
        value = None
    if value is None:
        try:
            value = client.info("memory").get("maxmemory_policy")
        except redis.ResponseError:
            return None
    if isinstance(value, bytes):
        value = value.decode()
    return str(value) if value else None


def warning_for(variable: str, policy: str) -> str | None:
    """The warning for a Redis (named by its variable) under ``policy``; None when safe."""
    if policy == SAFE_POLICY:
        return None
    return (
        f"Redis of {variable} has maxmemory-policy {policy!r}: under memory pressure it "
        "silently evicts roomrec's keys, losing de-duplication marks (duplicates are processed "
        "again), in-flight ledger entries, delayed retries and queued events. "
        f"Set maxmemory-policy to {SAFE_POLICY!r}."
    )


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """The policies read, by the variable naming each Redis (None: could not be read), and
    a warning for each one that evicts."""

    policies: dict[str, str | None]
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"maxmemory_policy": dict(self.policies)}
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return body


def redis_targets(
    urls: Mapping[str, str], *, sentinel: RedisSentinel | None = None
) -> dict[str, str]:
    """The distinct Redis servers among ``urls`` (variable -> URL), each under the first
    variable naming it. A failover list (``a;b``) counts by its first URL; a ``sentinel://``
    list by its sentinels (one master: ``sentinel``'s), only with ``sentinel``."""
    seen: dict[tuple[str, str, int | None] | frozenset[tuple[str, int]], str] = {}
    targets: dict[str, str] = {}
    for variable, url in urls.items():
        if is_sentinel_url(url):
            try:
                group = frozenset(parse_sentinel_url(url).sentinels)
            except ValueError:
                continue
            if sentinel is not None and group not in seen:
                seen[group] = variable
                targets[variable] = url
            continue
        first = url.split(";", 1)[0].strip()
        parts = urlsplit(first)
        if parts.scheme.lower() not in _SCHEMES:
            continue
        try:
            port = parts.port
        except ValueError:
            continue
        server = (parts.scheme.lower(), parts.hostname or parts.path, port or 6379)
        if server not in seen:
            seen[server] = variable
            targets[variable] = first
    return targets


class PolicyCheck:
    """Reads the policy of each Redis, at most every ``cache_seconds`` (a read that failed is
    tried again next time), and logs a WARNING the first time it finds an evicting policy."""

    def __init__(
        self,
        clients: Mapping[str, redis.Redis],
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = dict(clients)
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._policies: dict[str, tuple[float, str | None]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def for_urls(
        cls,
        urls: Mapping[str, str],
        *,
        timeout: float,
        clients: Mapping[str, redis.Redis] | None = None,
        sentinel: RedisSentinel | None = None,
        **kwargs: Any,
    ) -> PolicyCheck:
        """A check of every distinct Redis among ``urls`` (variable -> URL), each read giving
        up after about ``timeout`` s; ``clients`` are ones to use instead of new ones, by
        variable (the web's enqueuer already has one for ``REDIS_URL``); ``sentinel`` names the
        master of ``sentinel://`` URLs."""
        given = dict(clients or {})
        made = {
            variable: given.get(variable)
            or redis_client(
                url,
                sentinel=sentinel,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=None,
            )  # fmt: skip
            for variable, url in redis_targets(urls, sentinel=sentinel).items()
        }
        return cls(made, **kwargs)

    def report(self) -> PolicyReport:
        """The policies, read again where the cached one is older than ``cache_seconds``."""
        now = self.clock()
        policies: dict[str, str | None] = {}
        warnings: list[str] = []
        for variable, client in self.clients.items():
            cached = self._policies.get(variable)
            if cached is not None and now - cached[0] < self.cache_seconds:
                policy = cached[1]
            else:
                policy = self._read(variable, client, now)
            policies[variable] = policy
            warning = warning_for(variable, policy) if policy else None
            if warning:
                warnings.append(warning)
        return PolicyReport(policies, tuple(warnings))

    def _read(self, variable: str, client: redis.Redis, now: float) -> str | None:
        try:
            policy = read_policy(client)
        except redis.RedisError as exc:  # down or hung: no verdict, try again next time
            log.debug("could not read maxmemory-policy of %s: %s", variable, type(exc).__name__)
            return None
        with self._lock:
            self._policies[variable] = (now, policy)
            first = policy is not None and (variable, policy) not in self._warned
            if policy is not None:
                self._warned.add((variable, policy))
        warning = warning_for(variable, policy) if policy else None
        if warning and first:
            log.warning("%s", warning)
        elif policy is None:
            log.info("maxmemory-policy of %s is not readable (CONFIG and INFO refused)", variable)
        return policy

    def report_quietly(self) -> None:
        """:meth:`report` for a background thread: whatever goes wrong (a client closed under
        it as the app shuts down, an unexpected reply) is logged, never raised."""
        try:
            self.report()
        except Exception as exc:  # a thread's exception would reach nobody
            log.debug("could not read maxmemory-policy: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def warn_at_startup(
    urls: Mapping[str, str], *, timeout: float = 2.0, sentinel: RedisSentinel | None = None
) -> PolicyReport:
    """Read the policies once (never raising) and log a WARNING for each evicting one."""
    check = PolicyCheck.for_urls(urls, timeout=timeout, sentinel=sentinel)
    try:
        return check.report()
    finally:
        check.close()
