"""The deployment, run for real: the compose file's commands and health checks (web, worker,
beat, flower) on a private Redis, and several workers sharing one broker (Redis or RabbitMQ),
as workers on several hosts do."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import redis
import requests

from devtools.processes import BIN, REPO, ManagedProcess, celery_worker, gunicorn_web
from devtools.redis_server import free_port
from tests.integration.conftest import wait_for
from tests.support import compose
from tests.support.deploy import (
    done_per_event,
    done_per_worker,
    post_room_events,
    web_config,
    worker_config,
)


def _env(config: Mapping[str, str]) -> dict[str, str]:
    """What a process of the stack sees: this environment, ``config``, the venv first on PATH."""
    return {
        **os.environ,
        **config,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "HOSTNAME": socket.gethostname(),  # as Docker sets it in a container
    }


def _adapt(args: list[str], replacements: Mapping[str, str]) -> list[str]:
    adapted = []
    for arg in args:
        for old, new in replacements.items():
            arg = arg.replace(old, new)
        adapted.append(arg)
    if adapted[0] in ("python", "python3"):
        adapted[0] = sys.executable
    elif (BIN / adapted[0]).exists():
        adapted[0] = str(BIN / adapted[0])
    return adapted


def start_service(
    name: str, config: dict[str, str], log: Path, replacements: Mapping[str, str]
) -> ManagedProcess:
    process = ManagedProcess(_adapt(compose.command(name, config), replacements), config, log)
    process.start()
    return process


def health_check(name: str, config: dict[str, str], replacements: Mapping[str, str]) -> int:
    args = _adapt(compose.healthcheck(name, config), replacements)
    done = subprocess.run(args, env=_env(config), cwd=REPO, capture_output=True, timeout=60)
    return done.returncode


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def test_the_compose_services_run_and_pass_their_health_checks(
    redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    web_port, flower_port = free_port(), free_port()
    config = (
        worker_config(redis_url, redis_url)
        | web_config(redis_url, redis_url, tmp_path / "spool.sqlite3", web_port)
        | {
            "WEB_CONCURRENCY": "1",
            "WORKER_CONCURRENCY": "1",
            "DATABASE_URL": f"sqlite:///{tmp_path}/roomrec.db",
            "ARCHIVE_URL": f"file://{tmp_path}/recordings",
            "FLOWER_UNAUTHENTICATED_API": "true",  # this test reads flower's API
        }
    )
    replacements = {
        "0.0.0.0:8000": f"127.0.0.1:{web_port}",
        "127.0.0.1:8000": f"127.0.0.1:{web_port}",
        "--port=5555": f"--port={flower_port}",
        "127.0.0.1:5555": f"127.0.0.1:{flower_port}",
        "/app/data/": f"{tmp_path}/",
    }
    web = start_service("web", config, tmp_path / "web.log", replacements)
    processes.append(web)
    worker = start_service("worker", config, tmp_path / "worker.log", replacements)
    processes.append(worker)
    web_url = f"http://127.0.0.1:{web_port}"
    wait_for(lambda: answers(f"{web_url}/healthz"), 30, f"web up:\n{web.log()[-2000:]}")
    worker.wait_for_log(" ready.")

    assert health_check("web", config, replacements) == 0
    assert health_check("worker", config, replacements) == 0

    with_flower = importlib.util.find_spec("flower") is not None
    if with_flower:
        flower = start_service("flower", config, tmp_path / "flower.log", replacements)
        processes.append(flower)
        flower_url = f"http://127.0.0.1:{flower_port}"
        wait_for(lambda: answers(f"{flower_url}/healthcheck"), 30, "flower up")
        assert health_check("flower", config, replacements) == 0
        # Task events are on once flower has told the worker (it does so at start).
        wait_for(lambda: answers(f"{flower_url}/api/workers?refresh=1"), 30, "flower's workers")
        wait_for(lambda: "Events of group {task} enabled" in worker.log(), 30, "task events on")

    events = post_room_events(web_url, 1)
    assert [answer.status_code for answer in events.values()] == [204]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: done_per_event(client) == Counter(list(events)), 30, "the event handled")

    if with_flower:

        def flower_saw_the_task() -> bool:
            tasks = requests.get(f"{flower_url}/api/tasks", timeout=5).json()
            return any(
                task["name"] == "roomrec.process_event" and task["state"] == "SUCCESS"
                for task in tasks.values()
            )

        wait_for(flower_saw_the_task, 30, "flower's task view shows the event's task")

    # At DEBUG, beat says when its scheduler is open: a SIGTERM before that (while it opens
    # the schedule file) makes beat's own shutdown handler fail, whatever the deployment.
    debug = {**config, "LOG_LEVEL": "DEBUG"}
    beat = start_service("beat", debug, tmp_path / "beat.log", replacements | {"INFO": "DEBUG"})
    processes.append(beat)
    beat.wait_for_log("beat: Ticking with max interval")
    assert beat.stop() == 0
    assert list(tmp_path.glob("celerybeat-schedule*"))  # where compose keeps it: the volume
    assert "ERROR" not in beat.log()

    assert worker.stop() == 0
    quick = replacements | {"-t 10": "-t 2"}
    assert health_check("worker", config, quick) != 0  # the check can fail: nobody answers
    assert web.stop() == 0
    assert health_check("web", config, replacements) != 0
    client.close()


def test_two_workers_on_one_broker_share_the_events_and_handle_each_once(
    broker_url: str, redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    port = free_port()
    web = gunicorn_web(
        web_config(redis_url, broker_url, tmp_path / "spool.sqlite3", port), tmp_path / "web.log",
        port,
        workers=1,
    )  # fmt: skip
    processes.append(web)
    config = worker_config(redis_url, broker_url, TEST_HANDLER_SECONDS="0.3")
    workers = []
    for name in ("first", "second"):  # as on two hosts: only the broker is shared
        worker = celery_worker(
            config, tmp_path / f"{name}.log", concurrency=1, extra_args=["-n", f"{name}@%h"]
        )
        processes.append(worker)
        workers.append(worker)

    events = post_room_events(f"http://127.0.0.1:{port}", 12)
    assert {answer.status_code for answer in events.values()} == {204}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: sum(done_per_event(client).values()) >= 12, 60, "12 events handled")

    assert done_per_event(client) == Counter(list(events))  # each event once, nothing else
    pids = {worker.process.pid for worker in workers if worker.process}
    shares = done_per_worker(client)
    assert set(shares) == pids, f"not shared: {shares}"
    client.close()
