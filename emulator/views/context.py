"""What a view knows of the request it answers: the emulator's state, the account whose
credentials the request carries, the base of absolute URLs, who owns a resource; and the JSON
answer every view sends (a recording or a room as its account sees it: :func:`rendered`).

The account is the one :mod:`emulator.server.hooks` authenticated before the view ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, g, jsonify, request

from emulator.model.rooms import Recording, Room
from emulator.model.state import EmulatorState

STATE_KEY = "emulator"  # app.extensions[STATE_KEY]: the EmulatorState the app serves
ACCOUNT_KEY = "emulator_account"  # g.<ACCOUNT_KEY>: the account of the request's credentials
Resource = TypeVar("Resource", Recording, Room)


def current_state() -> EmulatorState:
    state: EmulatorState = current_app.extensions[STATE_KEY]
    return state


def current_account() -> str:
    """The account the request's credentials belong to (the main one outside /v1)."""
    account: str | None = g.get(ACCOUNT_KEY)
    return account if account is not None else current_state().config.account_sid


def base_url() -> str:
    return current_state().config.base_url or request.host_url.rstrip("/")


def owner(resource: Recording | Room) -> str:
    """The account a recording or room belongs to."""
    return resource.account_sid or current_state().config.account_sid


def mine(resource: Recording | Room) -> bool:
    """Whether the request's credentials are those of the resource's account: Twilio answers
    another account's resource 404 (code 20404), as if it did not exist."""
    return owner(resource) == current_account()


def json_response(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def rendered(
    render: Callable[[Resource, str, str], dict[str, Any]], resource: Resource, status: int = 200
) -> Response:
    """``render(resource, its account, the base URL)``, Twilio's JSON of it, as the answer."""
    return json_response(render(resource, owner(resource), base_url()), status)
