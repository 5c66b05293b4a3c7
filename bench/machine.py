"""What the figures were measured on: CPUs, memory, kernel, load, and the versions that
matter (Python, the libraries on the hot path, redis-server, wrk, curl)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.tools import version
from devtools.redis_server import redis_binary

PACKAGES = ("flask", "werkzeug", "gunicorn", "celery", "kombu", "redis", "marshmallow",
            "twilio", "requests", "sqlalchemy", "standardwebhooks")  # fmt: skip


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe() -> dict[str, Any]:
    try:
        redis_server = version([redis_binary(), "--version"])
    except RuntimeError:
        redis_server = None
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "memory_mib": memory_mib(),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "redis_server": redis_server,
        "wrk": version(["wrk", "-v"]),
        "curl": version(["curl", "--version"]),
        "load_average_at_start": load_average(),
    }


def _os_name() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return None
