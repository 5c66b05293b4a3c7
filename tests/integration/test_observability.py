"""Metrics and logs of the real processes: gunicorn with two workers, a prefork Celery worker.

- The web's counts from both gunicorn workers add up on ``/metrics`` (multiprocess files in
  ``PROMETHEUS_MULTIPROC_DIR``, prepared by ``gunicorn.conf.py``).
- The worker's pool processes count, its main process serves the sum on ``METRICS_PORT``.
- Every line either writes is one JSON object; task lines carry the task's fields; no secret.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import gunicorn_web
from devtools.receiver import ForwardTarget
from devtools.redis_server import free_port
from emulator.client import EmulatorProcess, RoomSimulator
from tests.integration.conftest import FORWARD_SECRET, Stack, wait_for
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, room_params, sign

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_PID_FILE = re.compile(r"_(\d+)\.db$")


def scrape(url: str) -> Samples:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def pids(directory: Path) -> set[str]:
    """The processes that wrote counts under ``directory``."""
    return {m.group(1) for f in directory.rglob("*.db") if (m := _PID_FILE.search(f.name))}


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as one JSON object (fails naming the first that is not)."""
    parsed = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


def test_web_counts_of_both_gunicorn_workers_add_up(redis_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"left by a previous run")  # wiped at start
    port = free_port()
    config = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SPOOL_PATH": str(tmp_path / "spool.sqlite3"), "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }  # fmt: skip
    web = gunicorn_web(config, tmp_path / "web.log", port, workers=2)
    url = f"http://127.0.0.1:{port}/twilio/room-events"
    sent: list[int] = []

    def send_batch() -> set[str]:
        def one(_: int) -> int:
            params = room_params("room-created")
            headers = {"X-Twilio-Signature": sign(url, params)}
            return requests.post(url, data=params, headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            sent.extend(pool.map(one, range(16)))
        return pids(directory) if len(pids(directory)) >= 2 else set()

    try:
        wait_for(send_batch, 60, "both gunicorn workers counting")
        assert set(sent) == {204}
        labels = {"event": "room-created", "outcome": "accepted", "status": "204"}
        for _ in range(6):  # whichever worker answers the scrape, it shows both workers' counts
            samples = scrape(f"http://127.0.0.1:{port}/metrics")
            assert value(samples, "roomrec_callbacks_total", **labels) == len(sent)
            assert value(samples, "roomrec_callback_ack_seconds_count", status="204") == len(sent)
            assert value(samples, "roomrec_queue_depth", queue="roomrec.events") == len(sent)
        log = web.log()
    finally:
        web.stop()
    records = json_lines(log)
    assert any(r["logger"] == "gunicorn.error" for r in records)  # gunicorn's own lines too
    accepted = [r for r in records if r["message"].startswith("accepted room-created")]
    assert len(accepted) == len(sent)
    assert all(r["event"] == "room-created" and r["room_sid"].startswith("RM") for r in accepted)
    assert AUTH_TOKEN not in log


def test_worker_pool_counts_add_up_on_its_port_and_every_line_is_json(
    start_stack: Callable[..., Stack],
    twilio: EmulatorProcess,
    forward_target: ForwardTarget,
    tmp_path: Path,
) -> None:
    parent = tmp_path / "worker-metrics"
    parent.mkdir()
    port = free_port()
    stack = start_stack(
        METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(parent), ROOM_READY_EVENTS="0"
    )  # counts below are of the callbacks' own events
    twilio.control.add_fault("/Recordings/RT", "status", status=503, count=2)
    simulator = RoomSimulator(
        twilio.control, stack.callback_url, ACCOUNT_SID, AUTH_TOKEN, rng=random.Random(3)
    )
    room = simulator.play(participants=2)
    events = len(room.callbacks)
    assert {sent.status for sent in room.callbacks} == {204}
    wait_for(lambda: len(forward_target.deliveries) >= events, 60, f"{events} deliveries")

    metrics_url = f"http://127.0.0.1:{port}/metrics"
    runs = events + 2  # the two fetches answered 503 ran again

    def counted() -> Samples | None:
        samples = scrape(metrics_url)
        done = value(samples, "roomrec_tasks_total", task="roomrec.process_event",
                     outcome="succeeded")  # fmt: skip
        return samples if done >= runs else None

    samples = wait_for(counted, 30, f"{runs} runs of process_event counted on the worker's port")
    labels = {"task": "roomrec.process_event", "outcome": "succeeded"}
    assert value(samples, "roomrec_tasks_total", **labels) == runs
    assert (
        value(samples, "roomrec_task_duration_seconds_count", task="roomrec.process_event") == runs
    )
    fetches = [
        c for c in room.callbacks if c.params["StatusCallbackEvent"].startswith("recording-")
    ]
    assert value(samples, "roomrec_twilio_responses_total", status="503") == 2
    assert value(samples, "roomrec_twilio_responses_total", status="200") == len(fetches)
    assert value(samples, "roomrec_queue_up") == 1
    assert ("roomrec_queue_depth", (("queue", "roomrec.handlers"),)) in samples
    assert len(pids(parent)) >= 2, "both pool processes counted"

    log = stack.worker.log()  # before stopping: Celery prints its shutdown notice as plain text
    records = json_lines(log)
    assert any(r["message"].startswith("celery worker") for r in records)  # not the banner
    in_tasks = [r for r in records if r.get("task_id")]
    assert in_tasks and all(r["room_sid"] == room.room_sid for r in in_tasks)
    retried = [r for r in in_tasks if r["event"].startswith("recording-") and r["attempt"] > 1]
    assert retried, "a fetch retried after a 503 logs its attempt"
    for secret in (AUTH_TOKEN, FORWARD_SECRET):
        assert secret not in log

    stack.worker.stop()
    assert list(parent.iterdir()) == []  # the worker's private directory is gone
