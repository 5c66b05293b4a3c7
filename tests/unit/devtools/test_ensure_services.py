"""devtools/ensure_services.sh (make services): which Debian packages it finds missing, run on
made-up machines (a PATH and Debian's directories of our choosing, ``--check``: it installs
nothing here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "devtools" / "ensure_services.sh"
BASH = shutil.which("bash") or "/bin/bash"


def executable(path: Path, body: str = "exit 0") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def missing(machine: Path) -> list[str]:
    """What the script would install on ``machine``: ``bin`` its PATH, ``rabbitmq`` and
    ``postgresql`` where Debian's rabbitmq-server and PostgreSQL versions would be."""
    (machine / "bin").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": str(machine / "bin"),
        "RABBITMQ_SCRIPTS": str(machine / "rabbitmq"),
        "POSTGRESQL_VERSIONS": str(machine / "postgresql"),
    }
    done = subprocess.run(
        [BASH, str(SCRIPT), "--check"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_script_parses() -> None:
    assert subprocess.run([BASH, "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_a_bare_machine_lacks_both(tmp_path: Path) -> None:
    assert missing(tmp_path) == ["rabbitmq-server", "postgresql"]


def test_debians_directories_off_path_are_found(tmp_path: Path) -> None:
    executable(tmp_path / "rabbitmq" / "rabbitmq-server")
    executable(tmp_path / "bin" / "epmd")
    for name in ("pg_ctl", "initdb"):
        executable(tmp_path / "postgresql" / "15" / "bin" / name)
    assert missing(tmp_path) == []


def test_binaries_on_path_are_found(tmp_path: Path) -> None:
    for name in ("rabbitmq-server", "epmd", "pg_ctl", "initdb"):
        executable(tmp_path / "bin" / name)
    assert missing(tmp_path) == []


@pytest.mark.parametrize("has_server", [True, False])
def test_pg_configs_directory_needs_the_server_binaries(tmp_path: Path, has_server: bool) -> None:
    """pg_config also comes with the client's headers alone (libpq-dev): no server then."""
    bindir = tmp_path / "pg" / "bin"
    executable(tmp_path / "bin" / "pg_config", f"echo {bindir}")
    executable(bindir / "pg_ctl")
    if has_server:
        executable(bindir / "initdb")
    assert ("postgresql" in missing(tmp_path)) is not has_server


def test_rabbitmq_needs_erlangs_epmd(tmp_path: Path) -> None:
    executable(tmp_path / "rabbitmq" / "rabbitmq-server")
    assert "rabbitmq-server" in missing(tmp_path)
