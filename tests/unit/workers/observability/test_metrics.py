"""workers.observability.metrics and workers.delivery.queue_depth: what is counted, under which
labels, and the
multiprocess mode of a prefork worker (in a child Python, since it changes the process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry

from devtools.processes import REPO
from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE
from workers.delivery.queue_depth import QueueDepthCollector
from workers.observability import metrics
from workers.observability.logs import bound_fields


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def _handlers() -> Iterator[None]:
    metrics.set_known_handlers(["log", "forward"])
    metrics.task_started()
    yield
    metrics.set_known_handlers([])


@pytest.mark.parametrize(
    ("stage", "label"),
    [("fetch", "fetch"), ("validate", "validate"), ("handler:forward", "handler:forward"),
     ("handler:evil\nname", "handler:unknown")],
)  # fmt: skip
def test_dead_letters_by_stage(stage: str, label: str) -> None:
    before = sample("roomrec_dead_letters_total", stage=label)
    metrics.dead_lettered(stage)
    assert sample("roomrec_dead_letters_total", stage=label) == before + 1


@pytest.mark.parametrize(
    ("status", "label"), [(200, "200"), (429, "429"), (503, "503"), (0, "unknown")]
)
def test_twilio_answers_by_status(status: int, label: str) -> None:
    before = sample("roomrec_twilio_responses_total", status=label)
    metrics.twilio_response(status)
    assert sample("roomrec_twilio_responses_total", status=label) == before + 1


def test_archived_bytes_add_up_and_nothing_is_not_counted() -> None:
    before = sample("roomrec_archived_bytes_total")
    metrics.archived_bytes(1000)
    metrics.archived_bytes(24)
    metrics.archived_bytes(0)
    assert sample("roomrec_archived_bytes_total") == before + 1024


@pytest.mark.parametrize(
    ("state", "outcome"),
    [("SUCCESS", "succeeded"), ("RETRY", "retried"), ("FAILURE", "failed"), (None, "unknown")],
)
def test_task_outcome_is_celery_state(state: str | None, outcome: str) -> None:
    labels = {"task": "roomrec.process_event", "outcome": outcome}
    before = sample("roomrec_tasks_total", **labels)
    timed = sample("roomrec_task_duration_seconds_count", task="roomrec.process_event")
    metrics.task_finished("roomrec.process_event", state, 0.02)
    assert sample("roomrec_tasks_total", **labels) == before + 1
    assert sample("roomrec_task_duration_seconds_count", task="roomrec.process_event") == timed + 1


@pytest.mark.parametrize(
    ("outcome", "raised", "counted"),
    [(None, None, "succeeded"), ("gone", None, "gone"), (None, RuntimeError, "failed"),
     ("retrying", RuntimeError, "retrying")],
)  # fmt: skip
def test_a_handler_run_is_timed_and_counted_with_its_outcome(
    outcome: str | None, raised: type[Exception] | None, counted: str
) -> None:
    labels = {"handler": "forward", "outcome": counted}
    before = sample("roomrec_handler_runs_total", **labels)
    timed = sample("roomrec_handler_duration_seconds_count", handler="forward")
    try:
        with metrics.handler_run("forward") as run:
            assert dict(bound_fields()) == {"handler": "forward"}
            run.outcome = outcome
            if raised is not None:
                raise raised("boom")
    except RuntimeError:
        pass
    assert dict(bound_fields()) == {}
    assert sample("roomrec_handler_runs_total", **labels) == before + 1
    assert sample("roomrec_handler_duration_seconds_count", handler="forward") == timed + 1


def test_handler_names_are_bounded() -> None:
    before = sample("roomrec_handler_duration_seconds_count", handler="unknown")
    metrics.handler_finished("not-configured", "succeeded", 0.3)
    assert sample("roomrec_handler_duration_seconds_count", handler="unknown") == before + 1
    assert sample("roomrec_handler_duration_seconds_bucket", handler="unknown", le="0.5") >= 1
    assert sample("roomrec_handler_runs_total", handler="not-configured", outcome="succeeded") == 0


def test_a_celery_retry_counts_once_even_when_the_task_counted_it() -> None:
    before = sample("roomrec_retries_total", stage="fetch")
    metrics.task_started()
    metrics.retry_scheduled("fetch")
    metrics.celery_retry("fetch")  # Celery's signal for the same retry
    assert sample("roomrec_retries_total", stage="fetch") == before + 1
    metrics.task_started()
    metrics.celery_retry("fetch")  # a task that only raised task.retry
    assert sample("roomrec_retries_total", stage="fetch") == before + 2


# --- queue depth ---------------------------------------------------------------------------


def _queue_samples(collector: QueueDepthCollector) -> dict[tuple[str, tuple[str, ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {
        (s.name, tuple(s.labels.values())): s.value
        for family in registry.collect()
        for s in family.samples
    }


def test_queue_depth_counts_every_priority_list_and_the_unacked(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.lpush(EVENTS_QUEUE, "a", "b", "c")
    client.lpush(f"{EVENTS_QUEUE}\x06\x169", "urgent")
    client.lpush(HANDLERS_QUEUE, "d")
    client.hset("unacked", mapping={"tag1": "x", "tag2": "y"})
    client.close()
    collector = QueueDepthCollector.for_broker(redis_url)
    assert collector is not None
    try:
        found = _queue_samples(collector)
    finally:
        collector.close()
    assert found[("roomrec_queue_up", ())] == 1
    assert found[("roomrec_queue_depth", (EVENTS_QUEUE,))] == 4
    assert found[("roomrec_queue_depth", (HANDLERS_QUEUE,))] == 1
    assert found[("roomrec_queue_unacked", ())] == 2


def test_queue_depth_of_an_unreachable_broker_is_down_not_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    collector = QueueDepthCollector(url, timeout=0.2)
    try:
        found = _queue_samples(collector)
    finally:
        collector.close()
    assert found == {("roomrec_queue_up", ()): 0}


@pytest.mark.parametrize("url", ["amqp://guest@localhost//", "sqs://", "memory://"])
def test_no_queue_depth_for_other_brokers(url: str) -> None:
    assert QueueDepthCollector.for_broker(url) is None


# --- multiprocess mode -----------------------------------------------------------------------

FORKED = textwrap.dedent(
    """
    import os, sys, requests
    from prometheus_client import values          # imported before the switch, as in a worker
    from workers.observability import metrics
    metrics.set_known_handlers(["log"])
    metrics.enable_multiprocess(sys.argv[1])
    children = []
    for n in range(2):
        pid = os.fork()
        if pid == 0:
            for _ in range(n + 1):
                metrics.twilio_response(200)
                metrics.handler_finished("log", "succeeded", 0.1)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
        metrics.process_exited(pid)
    server = metrics.start_exporter(int(sys.argv[2]), metrics.exporter_registry(sys.argv[1]),
                                    addr="127.0.0.1")
    text = requests.get(f"http://127.0.0.1:{sys.argv[2]}/metrics", timeout=5).text
    server.shutdown()
    print(text)
    """
)


def test_counts_of_forked_processes_add_up_on_the_exporter(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", FORKED, str(tmp_path), str(port)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'roomrec_twilio_responses_total{status="200"} 3.0' in done.stdout
    assert 'roomrec_handler_runs_total{handler="log",outcome="succeeded"} 3.0' in done.stdout
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process and kind


def test_exporter_on_a_taken_port_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert metrics.start_exporter(port, CollectorRegistry(), addr="127.0.0.1") is None
    assert "METRICS_PORT" in caplog.text
