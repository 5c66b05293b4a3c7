"""Everything one emulator instance holds: its accounts, recordings and rooms, compositions,
fault rules, settings, the count of requests in flight and the request log."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from emulator.errors import ValidationError
from emulator.model.accounts import EmulatorConfig
from emulator.model.compositions import CompositionStore
from emulator.model.faults import FaultTable
from emulator.model.room_store import Store


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
