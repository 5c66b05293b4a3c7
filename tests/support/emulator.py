"""The Twilio emulator as pytest fixtures, defined once for every suite.

``tests/conftest.py`` registers this module as a plugin, so every test may ask for:

- ``emulator``: a real emulator subprocess serving ``ACCOUNT_SID`` for the test module;
- ``twilio``: that emulator, emptied (recordings, rooms, compositions, faults, settings, request
  log) before and after each test;
- ``control``: the emptied emulator's control client.

A suite or module needing another emulator (one per session, more accounts, an API key) or
compositions advanced by hand replaces the fixture with one line built by the factories below,
e.g. ``emulator = emulator_fixture("session")``; ``twilio`` and ``control`` then use that one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Literal

import pytest

from emulator.client import EmulatorControl, EmulatorProcess
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN

Scope = Literal["session", "package", "module"]
Accounts = Mapping[str, Mapping[str, str]]


def emulator_fixture(
    scope: Scope = "module",
    *,
    account_sid: str = ACCOUNT_SID,
    auth_token: str = AUTH_TOKEN,
    api_key_sid: str | None = None,
    api_key_secret: str | None = None,
    accounts: Accounts | None = None,
) -> Callable[..., Iterator[EmulatorProcess]]:
    """An ``emulator`` fixture: one emulator subprocess per ``scope``, stopped at its end,
    serving ``account_sid`` (and its API key, if given) plus ``accounts``."""

    @pytest.fixture(scope=scope, name="emulator")
    def emulator() -> Iterator[EmulatorProcess]:
        with EmulatorProcess(
            account_sid, auth_token, api_key_sid, api_key_secret, accounts=accounts
        ) as process:
            yield process

    return emulator


def twilio_fixture(
    *, compositions_by_hand: bool = False
) -> Callable[..., Iterator[EmulatorProcess]]:
    """A ``twilio`` fixture: the ``emulator`` emptied before and after each test; with
    ``compositions_by_hand`` its compositions only advance when the test advances them."""

    @pytest.fixture(name="twilio")
    def twilio(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
        emulator.control.reset()
        if compositions_by_hand:
            emulator.control.set_composition_settings(auto_advance_ms=None)
        yield emulator
        emulator.control.reset()

    return twilio


emulator = emulator_fixture()
twilio = twilio_fixture()


@pytest.fixture
def control(twilio: EmulatorProcess) -> EmulatorControl:
    """The control client of the emptied emulator."""
    return twilio.control
