"""Several accounts in one emulator (``--accounts`` / ``TWILIO_ACCOUNTS``): each account's
credentials see only its own recordings and rooms; another account's answer 404 (code 20404),
as at Twilio. Without the option the emulator serves its one account exactly as before."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from flask.testing import FlaskClient

from emulator.client.process import REPO_ROOT
from emulator.model.accounts import Account, EmulatorConfig, parse_accounts
from emulator.model.state import EmulatorState
from emulator.server.app import create_emulator_app

MAIN = "AC" + "0123456789abcdef" * 2
MAIN_TOKEN = "emulator-main-token"
OTHER = "AC" + "ab" * 16
OTHER_TOKEN = "emulator-other-token"
OTHER_KEY = "SK" + "cd" * 16
OTHER_SECRET = "emulator-other-secret"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


MAIN_AUTH = basic(MAIN, MAIN_TOKEN)
OTHER_AUTH = basic(OTHER_KEY, OTHER_SECRET)


@pytest.fixture
def client() -> FlaskClient:
    config = EmulatorConfig(MAIN, MAIN_TOKEN, accounts=(
        Account(OTHER, OTHER_TOKEN, OTHER_KEY, OTHER_SECRET),
    ))  # fmt: skip
    return create_emulator_app(EmulatorState(config)).test_client()


def create(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    answer = client.post(
        "/_emulator/recordings", json={"room_sid": "RM" + "1" * 32, "status": "completed", **fields}
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return body


def test_a_recording_is_served_to_its_own_account_only(client: FlaskClient) -> None:
    theirs = create(client, account_sid=OTHER)
    path = f"/v1/Rooms/{theirs['room_sid']}/Recordings/{theirs['sid']}"

    refused = client.get(path, headers=MAIN_AUTH)
    served = client.get(path, headers=OTHER_AUTH)
    by_token = client.get(f"/v1/Recordings/{theirs['sid']}", headers=basic(OTHER, OTHER_TOKEN))

    assert (refused.status_code, refused.get_json()["code"]) == (404, 20404)
    assert served.status_code == 200 and served.get_json()["account_sid"] == OTHER
    assert by_token.status_code == 200
    assert client.get(f"{path}/Media", headers=MAIN_AUTH).status_code == 404
    assert client.delete(path, headers=MAIN_AUTH).status_code == 404
    assert client.get(path, headers=basic(OTHER, MAIN_TOKEN)).status_code == 401


def test_listings_and_rooms_hold_only_the_account_s_own(client: FlaskClient) -> None:
    mine, theirs = create(client), create(client, account_sid=OTHER, room_sid="RM" + "2" * 32)

    listed_main = client.get("/v1/Recordings", headers=MAIN_AUTH).get_json()["recordings"]
    listed_other = client.get("/v1/Recordings", headers=OTHER_AUTH).get_json()["recordings"]

    assert [r["sid"] for r in listed_main] == [mine["sid"]]
    assert [(r["sid"], r["account_sid"]) for r in listed_other] == [(theirs["sid"], OTHER)]
    assert mine["account_sid"] == MAIN
    room = f"/v1/Rooms/{theirs['room_sid']}"
    assert client.get(room, headers=MAIN_AUTH).status_code == 404
    assert client.get(room, headers=OTHER_AUTH).get_json()["account_sid"] == OTHER
    assert client.get(f"{room}/Recordings", headers=MAIN_AUTH).status_code == 404


def test_a_recording_s_account_cannot_change(client: FlaskClient) -> None:
    mine = create(client)

    answer = client.patch(f"/_emulator/recordings/{mine['sid']}", json={"account_sid": OTHER})

    assert answer.status_code == 400 and "account_sid" in answer.get_json()["error"]


@pytest.mark.parametrize(
    ("text", "error"),
    [("{", "not valid JSON"), ("[]", "expected a JSON object"),
     (json.dumps({"AC1": {"auth_token": "t"}}), "account_sid"),
     (json.dumps({OTHER: {}}), "auth_token"),
     (json.dumps({MAIN: {"auth_token": "t"}}), "once")],
)  # fmt: skip
def test_accounts_are_checked(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        EmulatorConfig(MAIN, MAIN_TOKEN, accounts=parse_accounts(text))


def test_serve_reads_the_accounts_from_the_environment() -> None:
    env = {"TWILIO_ACCOUNT_SID": MAIN, "TWILIO_AUTH_TOKEN": MAIN_TOKEN, "PATH": "/usr/bin:/bin",
           "TWILIO_ACCOUNTS": json.dumps({OTHER: {"auth_token": ""}})}  # fmt: skip
    refused = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--port", "0"], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip

    assert refused.returncode == 2 and "auth_token" in refused.stderr
