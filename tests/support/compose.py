"""Reading docker-compose.yml as Compose does: services (with the ``x-app`` merge resolved),
variables interpolated (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``$$``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?-)(?P<default>[^}]*))?\}|\$(?P<bare>\w+)"
)


def text() -> str:
    return COMPOSE_FILE.read_text()


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text())
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = load()["services"][name]
    return found


def referenced_variables(source: str) -> set[str]:
    """The variables ``source`` interpolates (``$$`` is an escaped ``$``, not a variable)."""
    return {
        match["name"] or match["bare"]
        for match in _VARIABLE.finditer(source)
        if match.group(0) != "$$"
    }


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        if name in env and (env[name] != "" or match["op"] != ":-"):
            return env[name]
        return match["default"] or ""

    return _VARIABLE.sub(replace, value)


def command(name: str, env: Mapping[str, str]) -> list[str]:
    return [interpolate(str(arg), env) for arg in service(name)["command"]]


def healthcheck(name: str, env: Mapping[str, str]) -> list[str]:
    """The health check's ``test`` as an argv: ``CMD`` as is, ``CMD-SHELL`` through ``sh -c``."""
    kind, *rest = [interpolate(str(arg), env) for arg in service(name)["healthcheck"]["test"]]
    if kind == "CMD-SHELL":
        return ["sh", "-c", " ".join(rest)]
    assert kind == "CMD", f"unexpected health check form {kind!r}"
    return rest
