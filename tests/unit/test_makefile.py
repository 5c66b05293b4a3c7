"""The Makefile's clean targets, run for real in a copy: ``make clean`` never touches data/
(the web's spool may hold the only copy of an event); ``make clean-data`` asks first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make(
    directory: Path, *args: str, answer: str | None = None
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("make")
    if binary is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [binary, "-s", "-C", str(directory), *args], input=answer, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL if answer is None else None,
    )  # fmt: skip


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for directory in ("data", ".run", ".pytest_cache", "venv"):
        (tmp_path / directory).mkdir()
    (tmp_path / "data" / "spool.sqlite3").write_text("a spooled event")
    return tmp_path


def test_clean_keeps_data(checkout: Path) -> None:
    done = make(checkout, "clean", f"VENV={checkout / 'venv'}")
    assert done.returncode == 0, done.stderr
    assert not (checkout / ".run").exists() and not (checkout / "venv").exists()
    assert (checkout / "data" / "spool.sqlite3").read_text() == "a spooled event"


@pytest.mark.parametrize("answer", [None, "no\n", "yes\n"])
def test_clean_data_deletes_nothing_unless_told(checkout: Path, answer: str | None) -> None:
    done = make(checkout, "clean-data", answer=answer)
    assert done.returncode != 0
    assert "DELETES data/" in done.stdout and "spool" in done.stdout
    assert (checkout / "data" / "spool.sqlite3").exists()


@pytest.mark.parametrize(("args", "answer"), [(["CONFIRM=yes"], None), ([], "delete\n")])
def test_clean_data_deletes_data_when_confirmed(
    checkout: Path, args: list[str], answer: str | None
) -> None:
    done = make(checkout, "clean-data", *args, answer=answer)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (checkout / "data").exists()


def test_help_names_both_targets(checkout: Path) -> None:
    out = make(checkout, "help").stdout
    assert "make clean " in out and "never data/" in out
    assert "make clean-data" in out


@pytest.mark.parametrize("target", ["test", "test-unit", "test-integration", "chaos"])
def test_the_services_binaries_are_ensured_before_pytest(checkout: Path, target: str) -> None:
    """RabbitMQ's and PostgreSQL's binaries first (the tests start private servers from them)."""
    (checkout / "pyproject.toml").touch()
    done = make(checkout, "-n", target)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ensure = lines.index("bash devtools/ensure_services.sh")
    assert ensure < next(i for i, line in enumerate(lines) if " -m pytest " in line)
