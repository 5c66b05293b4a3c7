"""External load tools (``wrk``, ``curl``): found on PATH, or installed with apt-get when
running as root on a Debian-like system; otherwise the benchmark that needs one is skipped
with the reason."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

log = logging.getLogger(__name__)

PACKAGES = {"wrk": "wrk", "curl": "curl"}


class ToolMissing(RuntimeError):
    """A tool is not installed and cannot be installed here; the message says what to do."""


def _apt_install(package: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:  # stale package lists: refresh once and try again
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolMissing(f"apt-get install {package} failed: {result.stderr.strip()[-300:]}")


def ensure(tool: str) -> str:
    """The path of ``tool``, installing its Debian package first if needed and allowed."""
    found = shutil.which(tool)
    if found:
        return found
    package = PACKAGES.get(tool, tool)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolMissing(
            f"{tool} is not installed and this is not root on a system with apt-get: "
            f"install it (e.g. `sudo apt-get install {package}`) and run again"
        )
    log.warning("installing %s with apt-get", package)
    _apt_install(package)
    found = shutil.which(tool)
    if not found:
        raise ToolMissing(f"{tool} is still not on PATH after installing {package}")
    return found


def version(command: list[str]) -> str | None:
    """The first line a ``--version``-like command prints, or None when it does not run."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None
