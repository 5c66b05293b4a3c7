"""docker-compose.yml and .env.example, checked without a Docker engine: the Compose CLI's own
validation when one is installed, and the structure roomrec relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import WebSettingsSchema, WorkerSettingsSchema
from tests.support import compose
from workers.celery_app import task_time_limit

REPO = compose.REPO
ENV_EXAMPLE = REPO / ".env.example"
APP_SERVICES = ("web", "worker", "beat", "flower")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|BASIC_AUTH", re.IGNORECASE)


def env_example_variables() -> dict[str, str]:
    """``NAME=value`` lines of .env.example, set or commented out (``# NAME=value``)."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            found[match[1]] = match[2].strip()
    return found


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_every_app_service_merges_the_one_x_app_block() -> None:
    text = compose.text()
    assert len(re.findall(r"^x-app: &app$", text, re.MULTILINE)) == 1
    loaded = compose.load()
    assert set(loaded["services"]) == {"redis", *APP_SERVICES}
    blocks = re.split(r"^  (\w+):$", text.split("\nservices:\n", 1)[1], flags=re.MULTILINE)
    merged = {
        name for name, body in zip(blocks[1::2], blocks[2::2], strict=True) if "<<: *app" in body
    }
    assert merged == set(APP_SERVICES)
    for name in APP_SERVICES:
        service = loaded["services"][name]
        for key, value in loaded["x-app"].items():
            assert service[key] == value, (name, key)


def test_redis_keeps_its_data_and_never_evicts() -> None:
    redis = compose.service("redis")
    command = redis["command"]
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--maxmemory-policy") == "noeviction"
    volume, path = redis["volumes"][0].split(":")[:2]
    assert path == "/data" and volume in compose.load()["volumes"]


@pytest.mark.parametrize(
    ("service", "probe"),
    [("redis", "ping"), ("web", "/readyz"), ("worker", "inspect ping"), ("flower", "/healthcheck")],
)
def test_services_have_health_checks(service: str, probe: str) -> None:
    check = compose.service(service)["healthcheck"]
    assert probe in " ".join(check["test"])
    assert seconds(check["timeout"]) < seconds(check["interval"])


def test_the_apps_start_once_redis_is_healthy() -> None:
    for name in APP_SERVICES:
        assert compose.service(name)["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_sizes_come_from_the_environment() -> None:
    assert option(compose.command("web", {"WEB_CONCURRENCY": "7"}), "--workers") == "7"
    assert option(compose.command("worker", {"WORKER_CONCURRENCY": "9"}), "--concurrency") == "9"
    assert option(compose.command("web", {}), "--workers") == "2"
    assert option(compose.command("worker", {}), "--concurrency") == "4"


def test_shutdown_waits_for_in_flight_work() -> None:
    web, worker = compose.service("web"), compose.service("worker")
    graceful = float(option(web["command"], "--graceful-timeout"))
    assert seconds(web["stop_grace_period"]) > graceful
    visibility = WorkerSettingsSchema().fields["visibility_timeout"].load_default
    assert seconds(worker["stop_grace_period"]) > task_time_limit(visibility)


def test_web_uses_gunicorn_conf_exactly_when_the_repository_has_one() -> None:
    command = compose.service("web")["command"]
    has_conf = (REPO / "gunicorn.conf.py").exists()
    assert ("-c" in command and option(command, "-c") == "gunicorn.conf.py") == has_conf
    assert ("COPY gunicorn.conf.py" in (REPO / "Dockerfile").read_text()) == has_conf


def test_flower_listens_on_this_host_only() -> None:
    (port,) = compose.service("flower")["ports"]
    assert port.startswith("127.0.0.1:")


def test_one_beat_with_a_persistent_schedule() -> None:
    beat = compose.service("beat")
    assert beat["command"][:4] == ["celery", "-A", "workers", "beat"]
    assert option(beat["command"], "--schedule").startswith("/app/data/")
    assert "/app/data" in " ".join(beat["volumes"])
    assert "deploy" not in beat and "scale" not in beat


def _environment_entries(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name, service in compose.load()["services"].items():
        for key, value in _environment_entries(service).items():
            assert not SECRET_NAME.search(key), f"{name}: {key} belongs in .env"
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{name}: {key} has credentials"
        assert service.get("env_file", ".env") == ".env"


def test_every_variable_compose_reads_is_in_env_example() -> None:
    missing = compose.referenced_variables(compose.text()) - set(env_example_variables())
    assert missing == set()


def test_every_settings_variable_is_in_env_example() -> None:
    read = {
        field.data_key or name
        for schema in (WebSettingsSchema(), WorkerSettingsSchema())
        for name, field in schema.fields.items()
    }
    assert read - set(env_example_variables()) == set()


def test_env_example_holds_no_secret() -> None:
    variables = env_example_variables()
    assert {"TWILIO_AUTH_TOKEN", "FORWARD_SECRET"} <= set(variables)  # the parser works
    filled = {name for name, value in variables.items() if SECRET_NAME.search(name) and value}
    assert filled == set()


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_the_compose_cli_accepts_the_file(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    shutil.copy(compose.COMPOSE_FILE, tmp_path / "docker-compose.yml")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    done = subprocess.run(
        [*cli, "--project-directory", str(tmp_path), "-f", str(tmp_path / "docker-compose.yml"),
         "config", "-q"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
