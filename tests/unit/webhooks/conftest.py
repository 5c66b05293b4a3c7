from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.twilio import AUTH_TOKEN
from webhooks import create_app
from webhooks.app_state import app_state
from webhooks.intake.state import intake_state

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(redis_url: str, tmp_path: Path) -> Iterator[AppFactory]:
    """Build apps on the private Redis (a real broker) with a spool in ``tmp_path``; keyword
    arguments are extra environment variables, ``None`` removing one. Closes every enqueuer
    afterwards."""
    apps: list[Flask] = []

    def make(**env: str | None) -> Flask:
        config = {
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": "http://localhost",  # what the test client calls
            "REDIS_URL": redis_url,
            "SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        } | env
        app = create_app({key: value for key, value in config.items() if value is not None})
        apps.append(app)
        return app

    yield make
    for app in apps:
        intake_state(app).relay.stop()
        app_state(app).enqueuer.close()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def closed_url() -> str:
    """A Redis URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A Redis URL on a server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
