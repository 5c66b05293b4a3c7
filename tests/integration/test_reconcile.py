"""Reconciliation on the real stack: ``celery -A workers beat`` schedules ``roomrec.reconcile``,
the worker lists the emulated account's recordings page by page and processes, end to end,
each completed or failed one whose callback never came; what was processed is not again."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from devtools.processes import BIN, ManagedProcess
from tests.integration.conftest import wait_for
from tests.support.twilio import AUTH_TOKEN, recording_params, sid, sign
from workers.delivery.celery_app import make_celery
from workers.delivery.dedup import event_id
from workers.state.keys import RECONCILE_LOCK_KEY


def recording(twilio: Any, status: str = "completed", **fields: Any) -> dict[str, str]:
    """A recording in the emulator and the parameters of its final callback."""
    event = "recording-failed" if status == "failed" else "recording-completed"
    params = recording_params(event)
    twilio.control.create_recording(
        sid=params["RecordingSid"], room_sid=params["RoomSid"],
        participant_sid=params["ParticipantSid"], source_sid=params["SourceSid"],
        type="video", codec="vp8", container_format="mkv", size=105956, duration=3,
        status=status, **fields,
    )  # fmt: skip
    return params


def post(url: str, params: dict[str, str]) -> int:
    headers = {"X-Twilio-Signature": sign(url, params)}
    return requests.post(url, data=params, headers=headers, timeout=5).status_code


def delivered(forward_target: Any) -> Counter[str]:
    return Counter(d.webhook_id for d in forward_target.deliveries)


def test_beat_reconciles_what_never_called_back(start_stack, twilio, forward_target, tmp_path):
    stack = start_stack(RECONCILE_INTERVAL="1")
    processed = recording(twilio)
    assert post(stack.callback_url, processed) == 204
    wait_for(lambda: forward_target.deliveries, 30, "the processed recording's delivery")
    missed_completed, missed_failed = recording(twilio), recording(twilio, "failed")
    for _ in range(100):  # more than one page of 100
        twilio.control.create_recording(room_sid=sid("RM"), status="processing")
    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    too_old = recording(twilio, date_created=old)  # before RECONCILE_WINDOW (2 h)
    twilio.control.clear_requests()

    beat = ManagedProcess(
        [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / "beat-schedule")],
        stack.worker_config | {"RECONCILE_INTERVAL": "1"}, tmp_path / "beat.log",
    )  # fmt: skip
    stack.processes.append(beat)
    beat.start()
    missed = {event_id(missed_completed), event_id(missed_failed)}
    wait_for(lambda: missed <= set(delivered(forward_target)), 60, "the missed recordings")
    wait_for(lambda: stack.worker.log().count("reconciled recordings since") >= 3, 30,
             "two more runs")  # fmt: skip
    beat.stop()

    assert delivered(forward_target) == Counter({event_id(processed): 1} | dict.fromkeys(missed, 1))
    assert event_id(too_old) not in delivered(forward_target)
    bodies = {d.webhook_id: d.body for d in forward_target.deliveries}
    completed = bodies[event_id(missed_completed)]
    assert completed["type"] == "recording.completed"
    assert completed["data"]["event"]["roomrec_source"] == "reconcile"
    assert completed["data"]["recording"]["sid"] == missed_completed["RecordingSid"]
    assert bodies[event_id(missed_failed)]["type"] == "recording.failed"
    assert "roomrec_source" not in bodies[event_id(processed)]["data"]["event"]
    listings = [r for r in twilio.control.requests() if r["path"] == "/v1/Recordings"]
    assert any("PageToken=" in r["query"] for r in listings)  # followed next_page_url
    assert stack.dead_letters() == []


def test_a_run_holding_the_lock_keeps_others_out(start_stack, twilio, forward_target):
    stack = start_stack(RECONCILE_INTERVAL="0")
    missed = recording(twilio)
    celery = make_celery(stack.worker_config["REDIS_URL"])
    try:
        stack.redis.set(RECONCILE_LOCK_KEY, "another-run", ex=60)
        celery.send_task("roomrec.reconcile")
        stack.worker.wait_for_log("another run holds")
        assert forward_target.deliveries == []

        stack.redis.delete(RECONCILE_LOCK_KEY)
        celery.send_task("roomrec.reconcile")
        wait_for(lambda: forward_target.deliveries, 30, "the missed recording")
    finally:
        celery.close()
    assert [d.webhook_id for d in forward_target.deliveries] == [event_id(missed)]
    assert stack.redis.exists(RECONCILE_LOCK_KEY) == 0  # released after the run


def test_twilio_refusing_the_listing_is_logged_not_retried(start_stack, twilio, forward_target):
    stack = start_stack(RECONCILE_INTERVAL="0", TWILIO_AUTH_TOKEN="not-" + AUTH_TOKEN)
    recording(twilio)
    celery = make_celery(stack.worker_config["REDIS_URL"])
    try:
        celery.send_task("roomrec.reconcile")
        stack.worker.wait_for_log("the next run covers it")
    finally:
        celery.close()
    assert "Twilio answered 401" in stack.worker.log()
    assert AUTH_TOKEN not in stack.logs()
    assert stack.redis.exists(RECONCILE_LOCK_KEY) == 0
    assert forward_target.deliveries == []
