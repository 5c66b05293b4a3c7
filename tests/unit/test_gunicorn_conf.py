"""gunicorn.conf.py as gunicorn itself reads it (``gunicorn --print-config``): the gevent
worker with its deadlines, and no trust in proxy headers unless TRUST_PROXY_HEADERS=1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
OURS = ("TRUST_PROXY_HEADERS", "FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", *OURS))}
    return subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "--print-config", "tests.support.wsgi_probe:app"],
        cwd=REPO, env=base | {"PYTHONPATH": str(REPO), "LOG_FORMAT": "text"} | env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def settings(env: dict[str, str]) -> dict[str, str]:
    done = run(env)
    assert done.returncode == 0, done.stderr
    return {m[1]: m[2] for m in re.finditer(r"^(\w+)\s+= (.*)$", done.stdout, re.MULTILINE)}


def test_the_defaults_hold_slow_clients_and_trust_no_proxy_header() -> None:
    found = settings({})
    assert found["worker_class"] == "<BoundedGeventWorker()>"
    assert found["worker_connections"] == "1000"
    assert found["keepalive"] == "10"  # the header deadline; keep-alive must be on for it
    assert found["workers"] == "2"
    assert found["forwarded_allow_ips"] == "[]"
    assert found["secure_scheme_headers"] == "{}"
    assert found["forwarder_headers"] == "[]"


def test_the_bounds_come_from_the_environment() -> None:
    found = settings(
        {"WEB_HEADER_TIMEOUT": "3", "WEB_WORKER_CONNECTIONS": "50", "WEB_CONCURRENCY": "3"}
    )
    assert (found["keepalive"], found["worker_connections"], found["workers"]) == ("3", "50", "3")


def test_proxy_headers_count_only_when_trusted_and_from_the_allowed_peers() -> None:
    found = settings({"TRUST_PROXY_HEADERS": "1", "FORWARDED_ALLOW_IPS": "10.0.0.0/8"})
    assert found["forwarded_allow_ips"] == "['10.0.0.0/8']"
    assert "X-FORWARDED-PROTO" in found["secure_scheme_headers"]
    assert "SCRIPT_NAME" in found["forwarder_headers"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("WEB_HEADER_TIMEOUT", "0"), ("WEB_BODY_TIMEOUT", "soon"), ("WEB_WORKER_CONNECTIONS", "0"),
     ("WEB_CONCURRENCY", "0"), ("TRUST_PROXY_HEADERS", "perhaps")],
)  # fmt: skip
def test_a_bad_value_stops_gunicorn_naming_the_variable(name: str, value: str) -> None:
    done = run({name: value})
    assert done.returncode != 0
    assert f"invalid configuration: {name}" in done.stderr
    assert "Traceback" not in done.stderr


def test_reading_the_config_loads_neither_redis_nor_celery() -> None:
    """gunicorn reads its config before the gevent worker patches the standard library; redis-py
    imports ``ssl``, and gevent then warns that ssl was imported before it was patched
    (gevent/gevent#1016), so nothing the config imports may load redis (nor Celery, which
    would load it through kombu)."""
    probe = (
        "import runpy, sys; runpy.run_path('gunicorn.conf.py'); "
        "print(sorted(m for m in ('redis', 'celery', 'kombu') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
