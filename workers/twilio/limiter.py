"""A limit on concurrent Twilio REST requests shared by every worker process on one Redis.

Twilio refuses a request with 429 (code 20429) while the account has as many requests in
flight as its concurrency limit allows; the refused request was not processed. Without a
client-side limit, worker processes outnumbering that limit see 429s on most fetches and each
refused task waits seconds in the retry queue. ``TWILIO_MAX_CONCURRENCY`` caps the requests in
flight across all processes; a request waits for a free slot instead. Twilio's limit is per
account, so is this one: each account of ``TWILIO_ACCOUNTS`` has slots of its own (keys
``roomrec:twilio:limit:{AC…}:*``), as many as the setting.

- **Leases.** A slot is a member of a sorted set scored with its expiry on Redis' clock, so a
  process killed while holding one leaks nothing: its lease runs out (:attr:`lease` seconds,
  longer than any request may take) and the slot is free again.
- **Adaptive size (AIMD).** A 429 still seen (a limit set too high, or other clients of the same
  account) shrinks the number of slots by a quarter, at most once per round of requests:
  a 429 to a request sent before the last decrease does not count again. Every
  :attr:`increase_every` seconds of successful requests adds a slot back, up to the setting.
- **Retry-After.** Twilio documents none for Video's 429, but when one comes, every process
  holds its requests until it has passed.
- **Waiting.** A release pushes to a Redis list that waiting processes block on, so a freed
  slot is taken within a round trip; they also look again every :data:`POLL` seconds, for slots
  freed by an expired lease.

Leases, pauses and the limit's changes all run in Lua scripts on Redis' clock, so hosts with
skewed clocks share one view.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from schemas.settings import WorkerSettings
from workers.errors import TransientError, translate
from workers.state.keys import TWILIO_LIMIT_PREFIX
from workers.state.redis_client import redis_client

log = logging.getLogger(__name__)

POLL = 0.25  # seconds a waiter blocks before it looks at the leases again
DECREASE = 0.75
INCREASE_EVERY = 1.0
WAKE_TTL_MS = 60_000
LEASE_TIMEOUTS = 3  # a lease lasts this many TWILIO_TIMEOUTs plus the margin
LEASE_MARGIN = 5.0

# KEYS: leases, state. ARGV: cap, lease ms, token.
# -> {1, the limit's epoch} when granted, {0, ms until a Retry-After pause ends} or {0, 0}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
if paused > now then
  return {0, paused - now}
end
local cap = tonumber(ARGV[1])
local limit = math.min(cap, tonumber(redis.call('HGET', KEYS[2], 'limit') or cap))
if redis.call('ZCARD', KEYS[1]) < math.max(1, math.floor(limit)) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  return {1, tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')}
end
return {0, 0}
"""

# KEYS: leases, state, wake. ARGV: cap, token, outcome (ok|throttled|error), epoch at acquire,
# Retry-After ms (0: none), decrease factor, increase every ms, wake list TTL ms.
# -> the limit after this outcome, as a string.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('ZREM', KEYS[1], ARGV[2])
local cap = tonumber(ARGV[1])
local limit = math.min(cap, tonumber(redis.call('HGET', KEYS[2], 'limit') or cap))
local changed = tonumber(redis.call('HGET', KEYS[2], 'changed_at') or '0')
if ARGV[3] == 'throttled' then
  if tonumber(ARGV[4]) == tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0') then
    limit = math.max(1, limit * tonumber(ARGV[6]))
    redis.call('HINCRBY', KEYS[2], 'epoch', 1)
    redis.call('HSET', KEYS[2], 'changed_at', now)
  end
  local retry_after = tonumber(ARGV[5])
  if retry_after > 0 then
    local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
    redis.call('HSET', KEYS[2], 'paused_until', math.max(paused, now + retry_after))
  end
elseif ARGV[3] == 'ok' and limit < cap and now - changed >= tonumber(ARGV[7]) then
  limit = math.min(cap, math.floor(limit) + 1)
  redis.call('HSET', KEYS[2], 'changed_at', now)
end
redis.call('HSET', KEYS[2], 'limit', tostring(limit))
if held == 1 then
  redis.call('LPUSH', KEYS[3], 1)
  redis.call('LTRIM', KEYS[3], 0, cap - 1)
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
end
return tostring(limit)
"""


def limiter_client(settings: WorkerSettings) -> redis.Redis:
    """The Redis connection of the limiters (one may serve every account's limiter): its
    socket timeout outlasts a waiter's block."""
    return redis_client(
        settings.redis_url, sentinel=settings.redis_sentinel, socket_timeout=POLL + 10,
        socket_connect_timeout=5, health_check_interval=30,
    )  # fmt: skip


def limiter_key_prefix(account_sid: str) -> str:
    """The keys of one account's limiter: Twilio limits concurrent requests per account."""
    return f"{TWILIO_LIMIT_PREFIX}:{account_sid}"


def limiter_from_settings(
    settings: WorkerSettings, account_sid: str | None = None, *,
    client: redis.Redis | None = None,
) -> TwilioLimiter | None:  # fmt: skip
    """The limiter ``TWILIO_MAX_CONCURRENCY`` asks for on ``REDIS_URL`` for the requests of
    ``account_sid`` (default: ``TWILIO_ACCOUNT_SID``), or None when unset. Each account has
    its own slots, as at Twilio; ``client`` may be shared by several accounts' limiters.

    A lease outlives any request: connecting and each read may take ``TWILIO_TIMEOUT``. A
    request waits for a slot at most that long too, then its task is retried."""
    cap = settings.twilio_max_concurrency
    if cap is None:
        return None
    lease = LEASE_TIMEOUTS * settings.twilio_timeout + LEASE_MARGIN
    return TwilioLimiter(
        client if client is not None else limiter_client(settings), cap, lease=lease,
        wait=settings.twilio_timeout,
        prefix=limiter_key_prefix(account_sid or settings.twilio_account_sid),
    )  # fmt: skip


@dataclass
class Slot:
    """One request's lease. :meth:`refused` records a 429 before the slot is released."""

    token: str
    epoch: int  # the number of decreases before this request was sent
    outcome: str = "ok"
    retry_after: float | None = None

    def refused(self, retry_after: float | None) -> None:
        self.outcome = "throttled"
        self.retry_after = retry_after


class TwilioLimiter:
    """At most ``cap`` (fewer after 429s) requests in flight across every process sharing
    ``client``'s Redis. A request waits up to ``wait`` seconds for a slot."""

    def __init__(
        self, client: redis.Redis, cap: int, *, lease: float, wait: float,
        prefix: str = TWILIO_LIMIT_PREFIX, increase_every: float = INCREASE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.client = client
        self.cap = cap
        self.lease = lease
        self.wait = wait
        self.increase_every = increase_every
        self.clock = clock
        self.leases = f"{prefix}:leases"
        self.state = f"{prefix}:state"
        self.wake = f"{prefix}:wake"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    @contextmanager
    def slot(self, what: str) -> Iterator[Slot]:
        """Hold a slot for one request on ``what``; an exception releases it as neither a
        success nor a refusal."""
        slot = self.acquire(what)
        try:
            yield slot
        except BaseException:
            slot.outcome = "error"
            raise
        finally:
            self.release(slot)

    def acquire(self, what: str) -> Slot:
        token = uuid.uuid4().hex
        deadline = self.clock() + self.wait
        while True:
            with _redis_errors(what):
                granted, value = self._acquire(
                    keys=[self.leases, self.state], args=[self.cap, int(self.lease * 1000), token]
                )
            if granted:
                return Slot(token, int(value))
            paused = int(value) / 1000
            remaining = deadline - self.clock()
            if remaining <= 0 or paused > remaining:
                raise TransientError(
                    f"no Twilio request slot free within {self.wait:.0f}s for {what}",
                    retry_after=paused or None,
                )
            if paused:
                time.sleep(paused)  # Twilio asked every request to wait: no slot frees sooner
                continue
            with _redis_errors(what):
                self.client.blpop([self.wake], timeout=min(remaining, POLL))

    def release(self, slot: Slot) -> None:
        """Free the slot and count its outcome. A Redis failure here is only logged: the
        request's own answer stands, and the lease frees the slot when it expires."""
        retry_after_ms = int((slot.retry_after or 0) * 1000)
        try:
            limit = self._release(
                keys=[self.leases, self.state, self.wake],
                args=[self.cap, slot.token, slot.outcome, slot.epoch, retry_after_ms,
                      DECREASE, int(self.increase_every * 1000), WAKE_TTL_MS],
            )  # fmt: skip
        except redis.RedisError as exc:
            log.warning("could not release a Twilio request slot (%s); it frees itself within "
                        "%.0fs", type(exc).__name__, self.lease)  # fmt: skip
            return
        if slot.outcome == "throttled":
            log.info("Twilio answered 429: at most %s requests in flight from now on%s",
                     _shown(limit), f", none for {slot.retry_after:.1f}s"
                     if slot.retry_after else "")  # fmt: skip

    def limit(self) -> float:
        """The current number of slots (the cap until a 429 lowered it)."""
        value = self.client.hget(self.state, "limit")
        return min(float(self.cap), float(value)) if value is not None else float(self.cap)

    def in_flight(self) -> int:
        return int(self.client.zcard(self.leases))


def _shown(limit: Any) -> str:
    text = limit.decode() if isinstance(limit, bytes) else str(limit)
    return str(int(float(text)))


@contextmanager
def _redis_errors(what: str) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise translate(exc, f"the Twilio request limit for {what}") from exc
