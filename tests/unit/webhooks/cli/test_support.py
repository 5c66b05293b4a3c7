from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import click
import pytest

from webhooks.cli.support import parse_when, progress

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", NOW - timedelta(seconds=90)), ("15m", NOW - timedelta(minutes=15)),
     ("2h", NOW - timedelta(hours=2)), ("3d", NOW - timedelta(days=3)), ("0s", NOW),
     ("2026-11-24T10:30:00Z", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
     ("2026-11-24T10:30:00", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
     ("2026-11-24T12:30:00+02:00", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
     ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC))],
)  # fmt: skip
def test_when_is_a_duration_back_or_a_time(text: str, expected: datetime) -> None:
    moment = parse_when(text, NOW)

    assert moment == expected and moment.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "2 hours", "-1h", "1w", ""])
def test_anything_else_is_a_bad_parameter(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_when(text, NOW)


@pytest.mark.parametrize("length", [None, 3])
def test_a_bar_is_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch, length: int | None) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)

    with progress("Reconciling", length) as advance:
        for _ in range(3):
            advance(1)

    drawn = terminal.getvalue()
    assert "Reconciling" in drawn and "3" in drawn


@pytest.mark.parametrize("enabled", [True, False])
def test_no_bar_unless_on_a_terminal_and_enabled(
    monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    stream = io.StringIO() if enabled else Terminal()
    monkeypatch.setattr("sys.stderr", stream)

    with progress("Replaying", 2, enabled=enabled) as advance:
        advance(1)
        advance(1)

    assert stream.getvalue() == ""
