"""What the benchmarks share: each one starts from nothing the previous one left behind."""

from __future__ import annotations

import math
import random

import requests

from bench import callbacks
from bench.env import BenchEnv
from bench.latency import Sender, summarise
from workers.delivery.celery_app import EVENTS_QUEUE
from workers.state.keys import INFLIGHT_DUE_KEY, INFLIGHT_KEY, REPUBLISHED_KEY

DEFAULT_SETTINGS = {"max_concurrency": None, "latency_ms": 0, "throttle_retry_after": None}


def test_a_reset_leaves_nothing_of_a_previous_benchmark_but_the_recordings():
    env = BenchEnv()
    try:
        recording = env.recordings(1)[0]
        control = env.emulator.control
        # What a benchmark leaves: queued and in-flight messages, arrivals, emulator settings,
        # faults and a request log.
        with env.client() as client:
            client.lpush(EVENTS_QUEUE, "message")
            client.hset(INFLIGHT_KEY, "task", "message")
            client.zadd(INFLIGHT_DUE_KEY, {"task": 1.0})
            client.hset(REPUBLISHED_KEY, "task", 1)
            client.set("roomrec:done:evt_1:forward:-", 1)
        requests.post(env.receiver.hook_url, data=b"{}", headers={"webhook-id": "evt_1"},
                      timeout=5).raise_for_status()  # fmt: skip
        control.set_settings(max_concurrency=2, latency_ms=20, throttle_retry_after=1)
        control.add_fault(path="Recordings", status=503)
        url = f"{env.emulator.url}/v1/Rooms/{recording.room_sid}/Recordings/{recording.sid}"
        requests.get(url, auth=(callbacks.ACCOUNT_SID, callbacks.AUTH_TOKEN), timeout=5)

        env.reset()

        with env.client() as client:
            assert client.dbsize() == 0
        assert env.backlog() == 0 and env.queue_idle()
        assert env.receiver.stats()["count"] == 0
        assert control.faults() == []
        assert control.set_settings() == DEFAULT_SETTINGS
        assert control.stats()["total"] == 0
        assert control.get_recording(recording.sid)["sid"] == recording.sid  # the pool stays
    finally:
        env.close()


def test_a_reset_starts_no_service():
    env = BenchEnv()
    try:
        env.reset()
        assert (env._redis, env._receiver, env._emulator) == (None, None, None)
    finally:
        env.close()


def sender_of(sent: dict[str, float]) -> Sender:
    sender = Sender("http://127.0.0.1:1/")
    sender.sent = dict(sent)
    sender.statuses = {204: len(sent)}
    return sender


def test_a_latency_run_that_fell_behind_says_so():
    items = callbacks.recordings(random.Random(2), 4)
    sent = {item.event_id: 100.0 + n for n, item in enumerate(items)}
    arrivals = {items[0].event_id: 100.01, items[1].event_id: 102.0}  # 2 of 4, in 2 s

    result = summarise(sender_of(sent), arrivals, 100, 60, 10, backlog=2)

    figures, target = result["figures"], result["targets"][0]
    assert figures["delivered"] == 2 and figures["undelivered_after_grace"] == 2
    assert figures["queued_after_grace"] == 2 and figures["delivered_per_s"] == 1.0
    assert target["passed"] is False and target["measured"] is None
    assert "the worker fell behind: 2 still queued at the end" in target["note"]
    assert "1/s delivered against 100/s sent" in target["note"]


def test_a_latency_run_that_kept_up_reports_its_percentiles():
    items = callbacks.recordings(random.Random(3), 100)
    sent = {item.event_id: 100.0 + n / 100 for n, item in enumerate(items)}
    arrivals = {event: moment + 0.005 for event, moment in sent.items()}

    result = summarise(sender_of(sent), arrivals, 100, 1, 10)

    figures, target = result["figures"], result["targets"][0]
    assert figures["undelivered_after_grace"] == 0 and figures["queued_after_grace"] == 0
    assert math.isclose(figures["p99_ms"], 5.0, abs_tol=0.01)
    assert target["passed"] is True and not target.get("note")
