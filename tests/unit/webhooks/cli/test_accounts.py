"""The operator commands with several accounts (``TWILIO_ACCOUNTS``): ``recordings fetch`` and
``replay`` find a recording in whichever account has it (or the one ``--account`` names), and
``reconcile`` lists every account, each with its own credentials. Against the emulator serving
two accounts, queueing into the private Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from emulator.client import EmulatorProcess
from tests.support.emulator import emulator_fixture
from tests.support.queues import task_messages
from tests.support.twilio import ACCOUNT_SID, sid
from tests.unit.webhooks.cli_helpers import invoke, json_out, worker_env

ACCOUNT_B = "AC" + "b0" * 16
TOKEN_B = "account-b-auth-token-0123456789"
WRONG = json.dumps({ACCOUNT_B: {"auth_token": "not-b-s-token"}})


emulator = emulator_fixture(accounts={ACCOUNT_B: {"auth_token": TOKEN_B}})


@pytest.fixture
def env(twilio: EmulatorProcess, redis_url: str) -> dict[str, str | None]:
    return worker_env(
        redis_url,
        TWILIO_VIDEO_BASE_URL=twilio.url,
        TWILIO_ACCOUNTS=json.dumps({ACCOUNT_B: {"auth_token": TOKEN_B}}),
    )


def create(twilio: EmulatorProcess, account: str | None = None) -> str:
    created = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    body = twilio.control.create_recording(
        room_sid=sid("RM"), status="completed", date_created=created, type="audio", size=4096,
        duration=7, **_owner(account),
    )  # fmt: skip
    return str(body["sid"])


def events(redis_url: str) -> list[dict[str, Any]]:
    return [message["args"][0] for message in task_messages(redis_url, "roomrec.events")]


def test_fetch_finds_the_recording_in_its_account(app: Flask, twilio: EmulatorProcess,
                                                  env: Any) -> None:  # fmt: skip
    theirs = create(twilio, ACCOUNT_B)

    found = invoke(app, "recordings", "fetch", theirs, "--json", env=env)
    named = invoke(app, "recordings", "fetch", theirs, "--account", ACCOUNT_B, env=env)
    wrong = invoke(app, "recordings", "fetch", theirs, "--account", ACCOUNT_SID, env=env)

    assert found.exit_code == 0, found.output
    assert json_out(found)["account_sid"] == ACCOUNT_B
    assert named.exit_code == 0 and f"sid: {theirs}" in named.stdout
    assert wrong.exit_code == 1 and "404" in wrong.stderr


def test_replay_queues_the_event_of_the_recording_s_account(
    app: Flask, twilio: EmulatorProcess, env: Any, redis_url: str
) -> None:
    theirs = create(twilio, ACCOUNT_B)

    result = invoke(app, "recordings", "replay", theirs, env=env)

    assert result.exit_code == 0, result.output
    [event] = events(redis_url)
    assert event["params"]["AccountSid"] == ACCOUNT_B


def test_reconcile_lists_every_account(app: Flask, twilio: EmulatorProcess, env: Any,
                                       redis_url: str) -> None:  # fmt: skip
    mine, theirs = create(twilio), create(twilio, ACCOUNT_B)

    result = invoke(app, "reconcile", "--since", "1h", "--json", env=env)

    assert result.exit_code == 0, result.output
    document = json_out(result)
    assert sorted(document["queued"]) == sorted([mine, theirs])
    assert document["failed_accounts"] == {}
    accounts = {e["params"]["RecordingSid"]: e["params"]["AccountSid"] for e in events(redis_url)}
    assert accounts == {mine: ACCOUNT_SID, theirs: ACCOUNT_B}


def test_reconcile_fails_naming_an_account_it_could_not_list(
    app: Flask, twilio: EmulatorProcess, env: Any
) -> None:
    mine = create(twilio)

    result = invoke(app, "reconcile", "--since", "1h", env=env | {"TWILIO_ACCOUNTS": WRONG})

    assert result.exit_code == 1
    assert f"queued {mine}" in result.stdout
    assert f"account {ACCOUNT_B}" in result.stderr and "401" in result.stderr
    assert "not-b-s-token" not in result.output


def _owner(account: str | None) -> dict[str, Any]:
    return {"account_sid": account} if account else {}
