"""deploy/kubernetes, checked without a cluster: every manifest against the Kubernetes schemas
(kubernetes-validate ships them: offline, strict, for pinned versions), the kustomization when
kubectl is installed, and the facts roomrec relies on: probes, the disruption budget, one beat,
grace periods, a locked-down container, settings the schema knows and a Secret of placeholders.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from marshmallow import Schema

from schemas.settings import (
    ConfigurationError,
    ServerSettingsSchema,
    WebSettingsSchema,
    WorkerSettingsSchema,
    load_settings,
)
from tests.support import compose
from workers.delivery.celery_app import task_time_limit

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
# The oldest minor the manifests are written for (README.md) and the newest the pinned
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", "1.37")
SECRET_TEMPLATE = "secret.yaml"
KUSTOMIZATION = "kustomization.yaml"
COMPONENTS = ("web", "worker", "beat")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|BASIC_AUTH", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]*@")


def manifest_files() -> list[Path]:
    """Every file of resources: the kustomization's and the Secret template."""
    return sorted(path for path in MANIFESTS.glob("*.yaml") if path.name != KUSTOMIZATION)


def documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as file:
        return [document for document in yaml.safe_load_all(file) if document]


@functools.cache
def _resources() -> tuple[dict[str, Any], ...]:
    return tuple(document for path in manifest_files() for document in documents(path))


def resources() -> list[dict[str, Any]]:
    """Every resource of every manifest file (a copy: a test may change it)."""
    return copy.deepcopy(list(_resources()))


def resource(kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def deployment(component: str) -> dict[str, Any]:
    return resource("Deployment", f"roomrec-{component}")


def pod(component: str) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(component)["spec"]["template"]["spec"]
    return spec


def container(component: str) -> dict[str, Any]:
    (only,) = pod(component)["containers"]
    found: dict[str, Any] = only
    return found


def config() -> dict[str, str]:
    data: dict[str, str] = resource("ConfigMap", "roomrec-config")["data"]
    return data


def secret_template() -> dict[str, str]:
    data: dict[str, str] = resource("Secret", "roomrec-secrets")["stringData"]
    return data


def settings_variables() -> set[str]:
    return {
        field.data_key or name
        for schema in (WebSettingsSchema(), WorkerSettingsSchema(), ServerSettingsSchema())
        for name, field in schema.fields.items()
    }


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for document in resources():
        if document["kind"] == "Deployment":
            for each in document["spec"]["template"]["spec"]["containers"]:
                yield document["metadata"]["name"], each


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_every_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    found = documents(path)
    assert found
    for document in found:
        assert kubernetes_validate.validate(document, version, strict=True) == version


def test_the_validation_can_fail() -> None:
    document = deployment("web")
    document["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


def test_the_kustomization_applies_everything_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((MANIFESTS / KUSTOMIZATION).read_text())
    listed = set(kustomization["resources"])
    assert listed == {path.name for path in manifest_files()} - {SECRET_TEMPLATE}
    assert kustomization["namespace"] == resource("Namespace", "roomrec")["metadata"]["name"]
    images = {image["name"] for image in kustomization["images"]}
    assert {c["image"].rsplit(":", 1)[0] for _, c in containers()} == images


def test_kubectl_builds_the_kustomization() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    built = [document for document in yaml.safe_load_all(done.stdout) if document]
    assert {(d["kind"], d["metadata"]["name"]) for d in built} == {
        (d["kind"], d["metadata"]["name"]) for d in resources() if d["kind"] != "Secret"
    }
    for document in built:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "roomrec"
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


def _port(component: str, name: str) -> int:
    (port,) = [p["containerPort"] for p in container(component)["ports"] if p["name"] == name]
    number: int = port
    return number


def _image_cmd() -> list[str]:
    (cmd,) = [
        json.loads(line.removeprefix("CMD "))
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("CMD ")
    ]
    command: list[str] = cmd
    return command


def test_the_web_runs_the_images_gunicorn_on_its_port() -> None:
    web = container("web")
    assert "command" not in web and "args" not in web  # the image's CMD
    bind = _image_cmd()[_image_cmd().index("--bind") + 1]
    assert bind.rsplit(":", 1)[1] == str(_port("web", "http"))


def test_the_web_probes_are_liveness_on_healthz_never_readyz() -> None:
    # /readyz fails while Redis is down, exactly when the web's spool keeps the callbacks: as
    # a readiness probe it would take every web pod out of the Service at once.
    web = container("web")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = web[probe]["httpGet"]
        assert http["path"] == "/healthz", probe
        assert http["port"] == "http", probe
    # The liveness probe restarts a pod only after it stopped answering for a while.
    liveness, readiness = web["livenessProbe"], web["readinessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    assert liveness["timeoutSeconds"] < liveness["periodSeconds"]
    assert readiness["timeoutSeconds"] < readiness["periodSeconds"]


def test_the_service_sends_to_the_web_pods() -> None:
    service = resource("Service", "roomrec-web")
    assert service["spec"]["selector"] == deployment("web")["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def _selects(selector: dict[str, str], component: str) -> bool:
    labels = deployment(component)["spec"]["template"]["metadata"]["labels"]
    return selector.items() <= labels.items()


def test_a_disruption_budget_keeps_web_pods_up() -> None:
    budget = resource("PodDisruptionBudget", "roomrec-web")
    selector = budget["spec"]["selector"]["matchLabels"]
    assert _selects(selector, "web")
    assert not _selects(selector, "worker") and not _selects(selector, "beat")
    replicas = deployment("web")["spec"]["replicas"]
    assert replicas >= 2 and budget["spec"]["maxUnavailable"] < replicas
    rolling = deployment("web")["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


def test_the_web_stops_within_its_grace_period() -> None:
    conf = (REPO / "gunicorn.conf.py").read_text()
    graceful = re.search(r"^graceful_timeout = (\d+)$", conf, re.MULTILINE)
    assert graceful is not None
    pause = container("web")["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    grace = pod("web")["terminationGracePeriodSeconds"]
    assert grace > int(graceful[1]) + int(pause[1])


def test_the_spool_is_on_a_volume_of_the_web_pod() -> None:
    web = container("web")
    spool = {variable["name"]: variable["value"] for variable in web["env"]}["SPOOL_PATH"]
    mounts = {mount["mountPath"]: mount["name"] for mount in web["volumeMounts"]}
    volume_name = mounts[str(Path(spool).parent)]
    (volume,) = [v for v in pod("web")["volumes"] if v["name"] == volume_name]
    # On disk (it is fsync'd), not in memory: it survives a restart of the container.
    assert "emptyDir" in volume and volume["emptyDir"].get("medium", "") == ""


def test_exactly_one_beat_and_never_two_at_once() -> None:
    beat = deployment("beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "HorizontalPodAutoscaler" not in {r["kind"] for r in resources()}
    running_beat = [name for name, c in containers() if "beat" in c.get("args", [])]
    assert running_beat == ["roomrec-beat"]


def test_beat_and_the_worker_run_what_compose_runs() -> None:
    env = {"WORKER_CONCURRENCY": "4"}
    assert container("worker")["args"] == compose.command("worker", env)
    assert container("beat")["args"] == compose.command("beat", env)
    schedule = container("beat")["args"][container("beat")["args"].index("--schedule") + 1]
    mounts = {mount["mountPath"] for mount in container("beat")["volumeMounts"]}
    assert str(Path(schedule).parent) in mounts  # beat writes its schedule there


def test_the_worker_outlives_its_longest_task_on_shutdown() -> None:
    visibility = int(
        config().get("VISIBILITY_TIMEOUT")
        or WorkerSettingsSchema().fields["visibility_timeout"].load_default
    )
    assert pod("worker")["terminationGracePeriodSeconds"] > task_time_limit(visibility)


def test_no_probe_can_kill_a_busy_worker() -> None:
    # `celery inspect ping` goes through the broker: a broker outage would restart them all.
    for component in ("worker", "beat"):
        assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(container(component))


@pytest.mark.parametrize("component", COMPONENTS)
def test_containers_run_unprivileged_on_a_read_only_root(component: str) -> None:
    spec, each = pod(component), container(component)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] >= 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    context = each["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # What it writes: temporary files (gunicorn's, the metrics of its processes).
    assert "/tmp" in {mount["mountPath"] for mount in each["volumeMounts"]}
    assert "memory" in each["resources"]["limits"] and "cpu" in each["resources"]["requests"]


def test_gunicorn_can_open_its_control_socket() -> None:
    # gunicorn opens it in $HOME/.gunicorn (the image user's home, under the read-only root):
    # without a volume there it logs an error at every start and gunicornc cannot connect.
    home = re.search(r"--home-dir (\S+)", (REPO / "Dockerfile").read_text())
    assert home is not None
    mounts = {mount["mountPath"] for mount in container("web")["volumeMounts"]}
    assert f"{home[1]}/.gunicorn" in mounts


def test_the_readme_names_the_oldest_version_validated() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"Kubernetes {KUBERNETES_VERSIONS[0]} or later" in " ".join(readme.split())


def test_the_image_runs_as_the_user_the_pods_ask_for() -> None:
    (user,) = [
        line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("USER ")
    ]  # fmt: skip
    uid, gid = map(int, user.split(":"))
    for component in COMPONENTS:
        context = pod(component)["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)


def _variables_set() -> dict[str, set[str]]:
    """Each variable a manifest sets, with where: the ConfigMap, the Secret, a container."""
    found: dict[str, set[str]] = {}
    for name in config():
        found.setdefault(name, set()).add("ConfigMap")
    for name in secret_template():
        found.setdefault(name, set()).add("Secret")
    for where, each in containers():
        for variable in each.get("env", []):
            found.setdefault(variable["name"], set()).add(where)
    return found


def test_every_variable_set_is_one_the_settings_read() -> None:
    assert set(_variables_set()) - settings_variables() == set()


def test_no_variable_is_set_twice() -> None:
    twice = {name: where for name, where in _variables_set().items() if len(where) > 1}
    assert twice == {}


def test_every_pod_reads_the_config_and_the_secret() -> None:
    for component in COMPONENTS:
        sources = container(component)["envFrom"]
        assert {"configMapRef": {"name": "roomrec-config"}} in sources
        assert {"secretRef": {"name": "roomrec-secrets"}} in sources


FILLED_IN = {
    "PUBLIC_BASE_URL": "https://recordings.example.com",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "an-auth-token",
    "REDIS_URL": "redis://redis.example.com:6379/0",
    "DATABASE_URL": "postgresql+psycopg://roomrec:password@postgres.example.com/roomrec",
}


def test_the_settings_load_once_the_required_values_are_filled_in() -> None:
    environment = {**config(), **secret_template(), **FILLED_IN}
    for _, each in containers():
        with_container = {**environment, **{v["name"]: v["value"] for v in each.get("env", [])}}
        for schema in (WebSettingsSchema(), WorkerSettingsSchema(), ServerSettingsSchema()):
            load_settings(schema, with_container)


@pytest.mark.parametrize(
    ("schema", "variable"),
    [(WebSettingsSchema(), "TWILIO_AUTH_TOKEN"), (WorkerSettingsSchema(), "TWILIO_ACCOUNT_SID")],
)
def test_applied_as_they_are_the_templates_start_nothing(schema: Schema, variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(schema, {**config(), **secret_template()})


def test_the_secret_holds_only_placeholders() -> None:
    values = secret_template()
    assert {"TWILIO_AUTH_TOKEN", "FORWARD_SECRET", "REDIS_URL", "DATABASE_URL"} <= set(values)
    # Empty counts as unset: applied as it is, the processes refuse to start.
    assert {name: value for name, value in values.items() if value != ""} == {}


def test_secrets_and_credentials_are_kept_out_of_the_config_map() -> None:
    for name, value in config().items():
        assert not SECRET_NAME.search(name), f"{name} belongs in the Secret"
        assert not CREDENTIALS_IN_URL.search(value), f"{name} has credentials"
    # The URLs that may carry a password.
    assert {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"} <= set(secret_template())
    for _, each in containers():
        for variable in each.get("env", []):
            assert not SECRET_NAME.search(variable["name"]), variable["name"]
