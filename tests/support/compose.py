"""Reading docker-compose.yml as Compose does: services (with the ``x-app`` merge resolved),
variables interpolated (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``$$``), and the override files (``docker-compose.rabbitmq.yml``,
``docker-compose.postgres.yml``) merged on top as ``docker compose -f … -f …`` merges them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# The files added with -f (or COMPOSE_FILE in .env), by what they bring.
OVERRIDE_FILES = {
    "rabbitmq": REPO / "docker-compose.rabbitmq.yml",
    "postgres": REPO / "docker-compose.postgres.yml",
}
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<argument>[^}]*))?\}|\$(?P<bare>\w+)"
)
# What Compose replaces rather than appends to when an override file sets it again.
_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}


class MissingVariable(ValueError):
    """A ``${VAR:?error}`` whose variable is unset (or empty): Compose refuses the file."""


def text(path: Path = COMPOSE_FILE) -> str:
    return path.read_text()


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text(path))
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
        name, op = match["name"] or match["bare"], match["op"] or ""
        empty_is_unset = op.startswith(":")
        if name in env and (env[name] != "" or not empty_is_unset):
            return env[name]
        if op.endswith("?"):
            raise MissingVariable(f"{name}: {match['argument']}")
        return match["argument"] or ""

    return _VARIABLE.sub(replace, value)


def interpolated(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` (a loaded file, or part of one) with every string interpolated."""
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, Mapping):
        return {key: interpolated(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolated(item, env) for item in value]
    return value


def _merge(base: Any, override: Any, path: tuple[str, ...]) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value, (*path, key)) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and path[2:] not in _REPLACED:
        return [*base, *override]
    return override


def merged(*overrides: str) -> dict[str, Any]:
    """docker-compose.yml with the override files named (keys of :data:`OVERRIDE_FILES`) merged
    on top, in order: mappings (``environment``, ``depends_on``, ``services``) key by key, a
    service's ``command`` replaced, other lists appended. Not interpolated."""
    result: dict[str, Any] = load()
    for name in overrides:
        result = _merge(result, load(OVERRIDE_FILES[name]), ())
    return result


def command(name: str, env: Mapping[str, str]) -> list[str]:
    return [interpolate(str(arg), env) for arg in service(name)["command"]]


def healthcheck(name: str, env: Mapping[str, str]) -> list[str]:
    """The health check's ``test`` as an argv: ``CMD`` as is, ``CMD-SHELL`` through ``sh -c``."""
    kind, *rest = [interpolate(str(arg), env) for arg in service(name)["healthcheck"]["test"]]
    if kind == "CMD-SHELL":
        return ["sh", "-c", " ".join(rest)]
    assert kind == "CMD", f"unexpected health check form {kind!r}"
    return rest
