"""Fault rules injected on demand into /v1 and /_media requests."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from emulator.errors import ValidationError

ACTIONS = ("status", "drop", "latency")
_RULE_FIELDS = frozenset(
    {"path", "method", "action", "status", "retry_after", "latency_ms", "count", "probability"}
)


@dataclass
class FaultRule:
    id: int
    path: str
    method: str | None
    action: str
    status: int | None
    retry_after: int | None
    latency_ms: int
    count: int | None
    probability: float

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return re.search(self.path, path) is not None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _optional_int(data: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    return value


def parse_rule(data: Mapping[str, Any], rule_id: int) -> FaultRule:
    """Validate a rule posted to the control API."""
    unknown = sorted(set(data) - _RULE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(unknown)}")
    path = data.get("path", "")
    if not isinstance(path, str):
        raise ValidationError("path: expected a regular expression string")
    try:
        re.compile(path)
    except re.error as exc:
        raise ValidationError(f"path: invalid regular expression: {exc}") from exc
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise ValidationError("method: expected a string or null")
    action = data.get("action", "status")
    if action not in ACTIONS:
        raise ValidationError(f"action: expected one of {ACTIONS}, got {action!r}")
    status = _optional_int(data, "status", 400, 599)
    if action == "status" and status is None:
        raise ValidationError("status: required when action is 'status'")
    latency_ms = _optional_int(data, "latency_ms", 0, 600_000) or 0
    if action == "latency" and latency_ms <= 0:
        raise ValidationError("latency_ms: a positive value is required when action is 'latency'")
    probability = data.get("probability", 1)
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise ValidationError("probability: expected a number in [0, 1]")
    if not 0 <= probability <= 1:
        raise ValidationError("probability: expected a number in [0, 1]")
    return FaultRule(
        id=rule_id,
        path=path,
        method=method.upper() if method else None,
        action=action,
        status=status,
        retry_after=_optional_int(data, "retry_after", 0, 86_400),
        latency_ms=latency_ms,
        count=_optional_int(data, "count", 1, 1_000_000),
        probability=float(probability),
    )


class FaultTable:
    """Active rules in insertion order; the first matching rule applies."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self._rng = rng or random.Random()

    def add(self, data: Mapping[str, Any]) -> FaultRule:
        with self._lock:
            rule = parse_rule(data, self._next_id)
            self._next_id += 1
            self._rules.append(rule)
            return replace(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [replace(rule) for rule in self._rules]

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule to apply to this request, if any, consuming one of its ``count``."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1 and self._rng.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                return replace(rule)
            return None
