"""Counts that tests report at the end of the run (pytest_terminal_summary in tests/conftest.py)."""

from __future__ import annotations

from collections import Counter

COUNTS: dict[str, Counter[str]] = {}


def counter(name: str) -> Counter[str]:
    return COUNTS.setdefault(name, Counter())
