"""Everything one emulator instance holds: config, store, faults, settings, request log."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.compositions import CompositionStore
from emulator.errors import ValidationError
from emulator.faults import FaultTable
from emulator.formats import is_sid
from emulator.store import Store


@dataclass(frozen=True)
class Account:
    """One more account the emulator serves (a subaccount): its own credentials, and its own
    recordings and rooms, which the other accounts' credentials get 404 for, as at Twilio."""

    account_sid: str
    auth_token: str = field(repr=False)
    api_key_sid: str | None = None
    api_key_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_credentials(self.account_sid, self.auth_token, self.api_key_sid,
                           self.api_key_secret)  # fmt: skip

    def pairs(self) -> list[tuple[str, str]]:
        pairs = [(self.account_sid, self.auth_token)]
        if self.api_key_sid is not None and self.api_key_secret is not None:
            pairs.append((self.api_key_sid, self.api_key_secret))
        return pairs


def parse_accounts(text: str) -> tuple[Account, ...]:
    """``--accounts`` / ``TWILIO_ACCOUNTS``: a JSON object ``{"AC…": {"auth_token": …,
    "api_key_sid": …, "api_key_secret": …}}`` (the shape roomrec's settings read); an empty
    string is none. ValueError names what is wrong."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"accounts: not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise ValueError('accounts: expected a JSON object {"AC…": {"auth_token": "…"}}')
    accounts = []
    for sid, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"accounts: {sid}: expected an object")
        accounts.append(Account(
            account_sid=sid, auth_token=str(entry.get("auth_token") or ""),
            api_key_sid=entry.get("api_key_sid"), api_key_secret=entry.get("api_key_secret"),
        ))  # fmt: skip
    return tuple(accounts)


def _check_credentials(
    account_sid: str, auth_token: str, api_key_sid: str | None, api_key_secret: str | None
) -> None:
    if not is_sid(account_sid, "AC"):
        raise ValueError("account_sid must be AC followed by 32 hex digits")
    if not auth_token:
        raise ValueError("auth_token must not be empty")
    if (api_key_sid is None) != (api_key_secret is None):
        raise ValueError("api_key_sid and api_key_secret go together")
    if api_key_sid is not None and not is_sid(api_key_sid, "SK"):
        raise ValueError("api_key_sid must be SK followed by 32 hex digits")


@dataclass(frozen=True)
class EmulatorConfig:
    """Credentials the emulator accepts and the secret that signs media URLs.

    ``account_sid`` is the main account: what every resource belongs to unless created for
    another. ``accounts`` are more accounts (none by default), each with its own credentials.
    """

    account_sid: str
    auth_token: str
    api_key_sid: str | None = None
    api_key_secret: str | None = None
    # Overrides the base URL taken from each request's Host header.
    base_url: str | None = None
    media_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    accounts: tuple[Account, ...] = ()

    def __post_init__(self) -> None:
        _check_credentials(self.account_sid, self.auth_token, self.api_key_sid,
                           self.api_key_secret)  # fmt: skip
        sids = [self.account_sid, *(account.account_sid for account in self.accounts)]
        if len(set(sids)) != len(sids):
            raise ValueError("accounts: each account SID may appear once")

    @property
    def account_sids(self) -> tuple[str, ...]:
        return (self.account_sid, *(account.account_sid for account in self.accounts))

    def account_of(self, username: str | None, password: str | None) -> str | None:
        """The account whose credentials HTTP Basic ``username:password`` is, or None."""
        if not username or password is None:
            return None
        main = Account(self.account_sid, self.auth_token, self.api_key_sid, self.api_key_secret)
        for account in (main, *self.accounts):
            if any(
                hmac.compare_digest(username, user) and hmac.compare_digest(password, secret)
                for user, secret in account.pairs()
            ):
                return account.account_sid
        return None

    def accepts(self, username: str | None, password: str | None) -> bool:
        """Whether HTTP Basic ``username:password`` is one of the configured credentials."""
        return self.account_of(username, password) is not None


@dataclass(frozen=True)
class Settings:
    """``max_concurrency``: /v1 requests served at once, 429 (code 20429) beyond them.
    ``throttle_retry_after``: seconds sent as ``Retry-After`` with that 429. Twilio documents
    no such header for Video (None, the default, sends none); a number tests clients that
    honour one. ``latency_ms``: added to every /v1 and /_media request."""

    max_concurrency: int | None = None
    latency_ms: int = 0
    throttle_retry_after: int | None = None

    def updated(self, data: dict[str, Any]) -> Settings:
        unknown = sorted(set(data) - {"max_concurrency", "latency_ms", "throttle_retry_after"})
        if unknown:
            raise ValidationError(f"unknown fields: {', '.join(unknown)}")
        limit = data.get("max_concurrency", self.max_concurrency)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError("max_concurrency: expected a positive integer or null")
        if limit is not None and limit < 1:
            raise ValidationError("max_concurrency: expected a positive integer or null")
        latency = data.get("latency_ms", self.latency_ms)
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValidationError("latency_ms: expected a non-negative integer")
        retry_after = data.get("throttle_retry_after", self.throttle_retry_after)
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise ValidationError("throttle_retry_after: expected a non-negative integer or null")
        return Settings(max_concurrency=limit, latency_ms=latency,
                        throttle_retry_after=retry_after)  # fmt: skip


class ConcurrencyGate:
    """Counts in-flight /v1 requests against the configured limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def try_acquire(self, limit: int | None) -> bool:
        with self._lock:
            if limit is not None and self.active >= limit:
                return False
            self.active += 1
            self.peak = max(self.peak, self.active)
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.active


class RequestLog:
    """Served /v1 and /_media requests, and counters derived from them."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._by_status: Counter[str] = Counter()
        self._throttled = 0
        self._faults = 0

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)
            self._by_status[str(entry["status"] if entry["status"] is not None else "dropped")] += 1
            if entry.get("throttled"):
                self._throttled += 1
            if entry.get("fault") is not None:
                self._faults += 1

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_status.clear()
            self._throttled = 0
            self._faults = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._by_status.values()),
                "by_status": dict(self._by_status),
                "throttled": self._throttled,
                "faults_applied": self._faults,
            }


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store()
        self.faults = FaultTable()
        self.settings = Settings()
        self.gate = ConcurrencyGate()
        self.log = RequestLog()
        self.compositions = CompositionStore()

    def reset(self) -> None:
        """Forget recordings, rooms, compositions, faults, settings and the request log."""
        self.store.clear()
        self.compositions.clear()
        self.faults.clear()
        self.settings = Settings()
        self.log.clear()
        self.gate.reset_peak()
