from __future__ import annotations

import pytest

from schemas.settings import ConfigurationError
from tests.unit.workers.helpers import worker_settings
from workers import create_worker_app
from workers.recovery.schedule import BEAT_ENTRY, beat_schedule


def test_beat_reconciles_every_interval_by_default() -> None:
    schedule = beat_schedule(worker_settings())

    assert schedule == {
        BEAT_ENTRY: {"task": "roomrec.reconcile", "schedule": 900.0,
                     "options": {"expires": 900.0}},
    }  # fmt: skip


@pytest.mark.parametrize(("interval", "expected"), [("60", 60.0), ("3600", 3600.0)])
def test_the_interval_is_configurable(interval: str, expected: float) -> None:
    schedule = beat_schedule(worker_settings(RECONCILE_INTERVAL=interval, RECONCILE_WINDOW="7200"))

    assert schedule[BEAT_ENTRY]["schedule"] == expected


def test_an_interval_of_zero_turns_it_off() -> None:
    assert beat_schedule(worker_settings(RECONCILE_INTERVAL="0")) == {}


def test_the_worker_app_has_the_task_and_the_schedule(redis_url: str) -> None:
    settings = worker_settings(REDIS_URL=redis_url, RECONCILE_INTERVAL="120")

    app = create_worker_app(settings)

    assert "roomrec.reconcile" in app.tasks
    assert app.conf.beat_schedule[BEAT_ENTRY]["schedule"] == 120.0
    app.close()


def test_the_window_defaults_to_two_hours() -> None:
    settings = worker_settings()

    assert (settings.reconcile_interval, settings.reconcile_window) == (900, 7200)


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"RECONCILE_INTERVAL": "900", "RECONCILE_WINDOW": "900"}, "RECONCILE_WINDOW"),
     ({"RECONCILE_WINDOW": str(8 * 24 * 3600)}, "RECONCILE_WINDOW"),
     ({"RECONCILE_INTERVAL": "-1"}, "RECONCILE_INTERVAL"),
     ({"RECONCILE_INTERVAL": "often"}, "RECONCILE_INTERVAL")],
)  # fmt: skip
def test_bad_reconcile_settings_are_named(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        worker_settings(**env)
