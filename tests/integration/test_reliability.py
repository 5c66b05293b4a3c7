"""Faults inflicted on the real stack: killed workers, a restarted Redis, long retries.
Every event must take effect exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from devtools.processes import celery_worker
from devtools.redis_server import RedisServer
from tests.integration.conftest import wait_for
from tests.integration.test_pipeline import completed_recording, post
from tests.support.twilio import room_params
from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE, RESTORE_INTERVAL
from workers.delivery.dedup import event_id
from workers.pipeline.retry import BASE_DELAY
from workers.state.keys import DELAYED_KEY, INFLIGHT_KEY

SLOW = {"HANDLERS": "tests.support.handlers:slow_effect", "SLOW_HANDLER_SECONDS": "3"}


def effects(stack, params) -> int:
    return int(stack.redis.get(f"test:effects:{event_id(params)}") or 0)


def running_pid(stack) -> int:
    return int(wait_for(lambda: stack.redis.lindex("test:pids", 0), 30, "the handler to start"))


def test_retries_wait_in_redis_not_unacknowledged_in_a_worker(start_stack, twilio, forward_target):
    forward_target.answers.append(429)
    forward_target.retry_after = 4
    stack = start_stack(RETRY_BACKOFF_MAX="10")
    params = room_params()
    assert post(stack.callback_url, params).status_code == 204

    wait_for(lambda: forward_target.attempts, 30, "the first attempt")
    delayed = DELAYED_KEY.format(HANDLERS_QUEUE)
    wait_for(lambda: stack.redis.zcard(delayed) == 1, 10, "the retry in the delayed set")
    assert stack.redis.hlen("unacked") == 0  # nothing parked in a worker meanwhile
    due = stack.redis.zrange(delayed, 0, -1, withscores=True)[0][1]
    assert due - time.time() > 2  # Retry-After: 4 honoured

    assert stack.redis.hlen(INFLIGHT_KEY) == 1  # the retry's message, until it ran
    wait_for(lambda: forward_target.deliveries, 30, "the retried delivery")
    assert [a.status for a in forward_target.attempts] == [429, 200]
    assert stack.redis.zcard(delayed) == 0
    wait_for(lambda: stack.redis.hlen(INFLIGHT_KEY) == 0, 10, "an empty in-flight ledger")


def test_a_killed_pool_process_has_its_task_run_again(start_stack, twilio):
    stack = start_stack(**SLOW)
    params = room_params()
    assert post(stack.callback_url, params).status_code == 204

    os.kill(running_pid(stack), signal.SIGKILL)  # an OOM kill, mid-task

    wait_for(lambda: effects(stack, params) == 1, 60, "the task to be redelivered and complete")
    time.sleep(4)  # long enough for a wrongful second run to show
    assert effects(stack, params) == 1
    assert stack.dead_letters() == []


def test_a_lost_worker_host_has_its_tasks_resumed_by_another(start_stack, twilio, tmp_path):
    visibility = 30
    stack = start_stack(VISIBILITY_TIMEOUT=str(visibility), **SLOW)
    params = room_params()
    assert post(stack.callback_url, params).status_code == 204
    running_pid(stack)

    stack.worker.signal_group(signal.SIGKILL)  # main process and children at once
    lost_at = time.monotonic()
    stack.worker.stop()
    other = celery_worker(stack.worker_config, tmp_path / "other-worker.log")
    stack.processes.append(other)

    wait_for(lambda: effects(stack, params) == 1, visibility + 60, "resumed on the other worker")
    resumed_after = time.monotonic() - lost_at
    # The visibility timeout, then one restore sweep, then the task's own 3 s.
    assert resumed_after < visibility + RESTORE_INTERVAL + 3 + 15
    time.sleep(4)
    assert effects(stack, params) == 1


def test_a_message_the_broker_lost_is_published_again(start_stack, forward_target, tmp_path):
    """A message taken off its queue and then lost (a worker killed between kombu's BRPOP and
    its ``unacked`` write, a reply lost as Redis shut down) is found by the in-flight ledger."""
    stack = start_stack(VISIBILITY_TIMEOUT="30")  # grace 10 s, a sweep every 5 s
    stack.worker.stop()  # nobody consumes while the message is lost
    lost, kept = room_params(), room_params()
    assert post(stack.callback_url, lost).status_code == 204
    stolen = stack.redis.rpop(EVENTS_QUEUE)  # the oldest: ``lost``'s message, gone for good
    assert stolen is not None and event_id(lost) in stolen
    assert post(stack.callback_url, kept).status_code == 204
    assert stack.redis.hlen(INFLIGHT_KEY) == 2

    other = celery_worker(stack.worker_config, tmp_path / "other-worker.log")
    stack.processes.append(other)
    expected = {event_id(lost), event_id(kept)}
    wait_for(lambda: {d.webhook_id for d in forward_target.deliveries} == expected, 60,
             "the lost event published again and delivered")  # fmt: skip
    # Every attempt that ended leaves the ledger: nothing is published a second time.
    wait_for(lambda: stack.redis.hlen(INFLIGHT_KEY) == 0, 10, "an empty in-flight ledger")
    time.sleep(6)  # one more sweep
    assert sorted(d.webhook_id for d in forward_target.deliveries) == sorted(expected)
    assert "published 1 task message(s) again" in other.log()


def test_the_default_timing_resumes_a_lost_host_within_two_minutes():
    from schemas.settings import WorkerSettingsSchema, load_settings
    from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
    from workers.delivery.celery_app import task_time_limit

    settings = load_settings(
        WorkerSettingsSchema(), {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    )
    assert settings.visibility_timeout + RESTORE_INTERVAL <= 120
    assert task_time_limit(settings.visibility_timeout) < settings.visibility_timeout
    assert BASE_DELAY > 0


def test_a_redis_restart_loses_nothing(start_stack, twilio, forward_target, tmp_path):
    durable = RedisServer(tmp_path / "aof-redis", appendonly=True)
    durable.start()
    try:
        forward_target.answers.append(429)
        forward_target.retry_after = 6
        stack = start_stack(redis=durable, RETRY_BACKOFF_MAX="10")
        delayed_event = room_params()
        assert post(stack.callback_url, delayed_event).status_code == 204
        wait_for(
            lambda: stack.redis.zcard(DELAYED_KEY.format(HANDLERS_QUEUE)), 20, "a delayed retry"
        )

        durable.stop()
        while_down = room_params()  # arrives while Redis is down: spooled on the web host
        answer = post(stack.callback_url, while_down)
        assert answer.status_code == 204 and answer.headers.get("X-Roomrec-Spooled") == "1"
        durable.start()

        expected = {event_id(delayed_event), event_id(while_down)}
        wait_for(lambda: {d.webhook_id for d in forward_target.deliveries} == expected, 60,
                 "both events delivered after the restart")  # fmt: skip
        after = room_params()  # the worker reconnected by itself and still consumes
        assert post(stack.callback_url, after).status_code == 204
        wait_for(lambda: len(forward_target.deliveries) == 3, 30, "a new event after the restart")
        assert sorted(d.webhook_id for d in forward_target.deliveries) == sorted(
            expected | {event_id(after)}
        )
        assert stack.worker.process is not None and stack.worker.process.poll() is None
    finally:
        durable.stop()


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_secrets_never_reach_a_log(start_stack, twilio, forward_target, method):
    stack = start_stack(TWILIO_AUTH_TOKEN="a-worker-token-that-is-wrong")
    params = completed_recording(twilio)
    post(stack.callback_url, params)
    requests.post(stack.callback_url, data=params, headers={"X-Twilio-Signature": "forged"},
                  timeout=5)  # fmt: skip
    wait_for(stack.dead_letters, 30, "the 401 to be dead-lettered")
    text = stack.logs() + str(stack.dead_letters())
    for secret in (stack.worker_config["TWILIO_AUTH_TOKEN"], stack.worker_config["FORWARD_SECRET"]):
        assert secret not in text
    assert "forged" not in text
