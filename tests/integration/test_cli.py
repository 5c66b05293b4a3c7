"""The command line as an operator runs it, ``flask --app webhooks …`` in a subprocess, against
the real stack: dead letters produced by a refusing forward target and replayed, a signed test
callback, recordings fetched and replayed, reconciliation, and the ``--json`` outputs."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from typing import Any

import requests

from devtools.processes import BIN, REPO
from tests.integration.conftest import wait_for
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, recording_params, sid, sign
from workers.delivery.dedup import event_id
from workers.state.deadletters import DeadLetterStore


def flask(config: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "FORWARD_"))}
    # The CLI loads the web's settings, which bind signatures to a URL (any will do here).
    env |= {"PUBLIC_BASE_URL": "http://localhost"} | config | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "webhooks", *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done


def document(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def recording(twilio: Any, status: str = "completed") -> dict[str, str]:
    params = recording_params("recording-completed")
    twilio.control.create_recording(
        sid=params["RecordingSid"], room_sid=params["RoomSid"],
        participant_sid=params["ParticipantSid"], source_sid=params["SourceSid"],
        type="video", codec="vp8", container_format="mkv", size=105956, duration=3,
        status=status,
    )  # fmt: skip
    return params


def post(url: str, params: dict[str, str]) -> int:
    headers = {"X-Twilio-Signature": sign(url, params)}
    return requests.post(url, data=params, headers=headers, timeout=5).status_code


def succeeded(stack: Any, task: str) -> int:
    """How many runs of ``task`` (a name, or a name and ``[`` and an id) the worker finished."""
    return sum(1 for line in stack.worker.log().splitlines()
               if f"Task {task}" in line and "] succeeded" in line)  # fmt: skip


def test_dead_letters_listed_shown_replayed_once_and_purged(start_stack, twilio, forward_target):
    forward_target.answers.append(400)  # refused once: dead-lettered at once
    stack = start_stack()
    config = stack.worker_config
    params = recording(twilio)
    assert post(stack.callback_url, params) == 204
    wait_for(stack.dead_letters, 30, "a dead letter")

    [entry] = document(flask(config, "dead-letters", "list", "--json"))
    assert entry["stage"] == "handler:forward" and entry["event_id"] == event_id(params)
    assert entry["target"].startswith(forward_target.url + "#")
    assert "400" in entry["error"]
    shown = flask(config, "dead-letters", "show", entry["event_id"], "--json")
    assert document(shown) == entry
    human = flask(config, "dead-letters", "list")
    assert human.returncode == 0 and entry["id"] in human.stdout

    replayed = flask(config, "dead-letters", "replay", entry["id"], "--json")
    assert replayed.returncode == 0, replayed.stderr
    [task] = document(replayed)["replayed"]
    wait_for(lambda: forward_target.deliveries, 30, "the replayed delivery")
    assert [d.webhook_id for d in forward_target.deliveries] == [event_id(params)]
    assert stack.dead_letters() == []

    again = flask(config, "dead-letters", "replay", entry["id"])
    assert again.returncode == 1 and "no dead letter" in again.stderr

    # A replay that crashed after publishing left its entry: replaying it has no second effect.
    store = DeadLetterStore(stack.redis)
    fields = ("event_id", "stage", "target", "attempts", "error", "message")
    store.add(**{name: entry[name] for name in fields})
    assert flask(config, "dead-letters", "replay", "--all").returncode == 0
    replays = f"roomrec.run_handler[{task['task_id']}]"
    wait_for(lambda: succeeded(stack, replays) == 2, 30, "the second replay run")
    assert Counter(d.webhook_id for d in forward_target.deliveries) == {event_id(params): 1}

    store.add(**{name: entry[name] for name in fields})
    purged = flask(config, "dead-letters", "purge", "--all", "--yes", "--json")
    assert document(purged) == {"purged": 1}
    assert document(flask(config, "dead-letters", "list", "--json")) == []


def test_a_test_callback_goes_end_to_end(start_stack, twilio, forward_target):
    stack = start_stack()
    web = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": stack.worker_config["REDIS_URL"],
           "PUBLIC_BASE_URL": stack.web_url}  # fmt: skip

    sent = flask(web, "send-test-callback", stack.callback_url, "--event", "room-ended", "--json")
    refused = flask(web, "send-test-callback", stack.callback_url, "--auth-token", "wrong")

    assert sent.returncode == 0, sent.stderr
    report = document(sent)
    assert report["status"] == 204 and report["ok"] is True
    (delivery,) = wait_for(lambda: forward_target.deliveries, 30, "the test event")
    assert delivery.body["type"] == "room.ended"
    assert delivery.body["data"]["event"]["roomrec_source"] == "test-callback"
    assert delivery.webhook_id == event_id(report["params"])
    assert refused.returncode == 1
    assert ": 403" in refused.stdout and '"status": 403' in refused.stdout


def test_recordings_fetched_replayed_and_reconciled(start_stack, twilio, forward_target):
    stack = start_stack()
    config = stack.worker_config
    params = recording(twilio)
    assert post(stack.callback_url, params) == 204
    wait_for(lambda: forward_target.deliveries, 30, "the callback's delivery")

    fetched = flask(config, "recordings", "fetch", params["RecordingSid"], "--json")
    served = requests.get(f"{twilio.url}/v1/Recordings/{params['RecordingSid']}",
                          auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).json()  # fmt: skip
    assert document(fetched) == served

    plain = flask(config, "recordings", "replay", params["RecordingSid"])
    assert plain.returncode == 0, plain.stderr
    replay_id = f"{event_id(params)}.replay"
    wait_for(lambda: succeeded(stack, f"roomrec.process_event[{replay_id}") == 1, 30,
             "the replayed event")  # fmt: skip
    assert len(forward_target.deliveries) == 1  # forward already took effect: skipped

    forced = flask(config, "recordings", "replay", params["RecordingSid"], "--force", "--json")
    assert document(forced)["replayed"][0]["cleared"] == 2
    wait_for(lambda: len(forward_target.deliveries) == 2, 30, "the forced delivery")
    assert {d.webhook_id for d in forward_target.deliveries} == {event_id(params)}
    assert forward_target.deliveries[1].body["data"]["event"]["roomrec_source"] == "replay"

    missed = recording(twilio, "completed")
    reconciled = flask(config, "reconcile", "--since", "1h", "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    summary = document(reconciled)
    assert (summary["listed"], summary["enqueued"], summary["already_processed"]) == (2, 1, 1)
    assert summary["queued"] == [missed["RecordingSid"]]
    wait_for(lambda: len(forward_target.deliveries) == 3, 30, "the reconciled delivery")
    assert forward_target.deliveries[2].webhook_id == event_id(missed)
    again = flask(config, "reconcile", "--since", "1h")
    assert "0 queued, 2 already processed" in again.stdout
    assert stack.dead_letters() == []


def test_a_missing_variable_is_named_without_a_traceback(redis_url):
    web = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url,
           "PUBLIC_BASE_URL": "http://localhost"}  # fmt: skip

    done = flask(web, "recordings", "fetch", sid("RT"))

    assert done.returncode == 2
    assert "TWILIO_ACCOUNT_SID" in done.stderr and done.stdout == ""
