"""Two Twilio accounts in one deployment, through the real stack: a callback of account B signed
with B's auth token (the web knows both accounts), its recording fetched by a prefork Celery
worker with B's API key, the main account's with the main credentials."""

from __future__ import annotations

import json
from typing import Any

import requests

from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess
from tests.integration.conftest import wait_for
from tests.support.emulator import emulator_fixture
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, recording_params, sign
from workers.delivery.dedup import event_id

ACCOUNT_B = "AC" + "b0" * 16
TOKEN_B = "account-b-auth-token-0123456789"
KEY_B = "SK" + "b1" * 16
SECRET_B = "account-b-api-key-secret"


# This module's emulator serves account B too (the session's serves one account).
emulator = emulator_fixture(
    accounts={ACCOUNT_B: {"auth_token": TOKEN_B, "api_key_sid": KEY_B, "api_key_secret": SECRET_B}}
)


def completed(twilio: EmulatorProcess, account: str | None) -> dict[str, str]:
    params = recording_params("recording-completed", AccountSid=account or ACCOUNT_SID)
    twilio.control.create_recording(
        sid=params["RecordingSid"], room_sid=params["RoomSid"], type="audio", size=4096,
        duration=3, status="completed", **_owner(account),
    )  # fmt: skip
    return params


def post(url: str, params: dict[str, str], token: str) -> requests.Response:
    return requests.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params, token)},
                         timeout=5)  # fmt: skip


def test_each_account_s_recordings_are_fetched_with_its_own_credentials(
    start_stack, twilio: EmulatorProcess, forward_target: ForwardTarget
) -> None:
    web_accounts = json.dumps({ACCOUNT_B: {"auth_token": TOKEN_B}})
    worker_accounts = json.dumps({ACCOUNT_B: {"api_key_sid": KEY_B, "api_key_secret": SECRET_B}})
    stack = start_stack(
        web_overrides={"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_ACCOUNTS": web_accounts},
        TWILIO_ACCOUNTS=worker_accounts,
    )  # fmt: skip
    mine, theirs = completed(twilio, None), completed(twilio, ACCOUNT_B)

    assert post(stack.callback_url, mine, AUTH_TOKEN).status_code == 204
    assert post(stack.callback_url, theirs, TOKEN_B).status_code == 204

    wait_for(lambda: len(forward_target.deliveries) >= 2, 60, "both accounts' recordings")
    delivered = {d.webhook_id: d.body for d in forward_target.deliveries}
    assert set(delivered) == {event_id(mine), event_id(theirs)}
    assert delivered[event_id(theirs)]["data"]["recording"]["account_sid"] == ACCOUNT_B
    users = {r["path"].rsplit("/", 1)[-1]: r["username"] for r in twilio.control.requests()}
    assert users[mine["RecordingSid"]] == ACCOUNT_SID
    assert users[theirs["RecordingSid"]] == KEY_B
    assert stack.dead_letters() == []
    assert "account-b-api-key-secret" not in stack.logs()


def _owner(account: str | None) -> dict[str, Any]:
    return {"account_sid": account} if account else {}
