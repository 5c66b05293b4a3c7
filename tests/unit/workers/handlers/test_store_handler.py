"""The ``store`` handler as the worker builds and calls it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from schemas.settings import ConfigurationError
from tests.support.databases import MakeDatabase
from tests.support.twilio import sid
from tests.unit.workers.helpers import worker_settings
from tests.unit.workers.store_events import Room
from workers.errors import TransientError
from workers.handlers import HandlerContext, resolve
from workers.handlers.store import StoreHandler
from workers.metadata.engine import database_url, shown
from workers.metadata.errors import UPGRADE_COMMAND
from workers.metadata.repository import EVENTS, RECORDINGS

MakeContext = Callable[..., HandlerContext]


def handler_for(make_context: MakeContext, url: str) -> StoreHandler:
    handler = resolve("store")(make_context(HANDLERS="store", DATABASE_URL=url))
    assert isinstance(handler, StoreHandler)
    assert list(handler.targets()) == [None]
    return handler


def count(handler: StoreHandler, table: object) -> int:
    with handler.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_handler_stores_each_event_once(make_context: MakeContext, tmp_path: Path) -> None:
    handler = handler_for(make_context, f"sqlite:///{tmp_path}/roomrec.db")
    room, rt = Room(), sid("RT")
    events = [room.recording("recording-started", rt, 1), room.recording("recording-completed",
              rt, 9), room.event("room-ended", 20)]  # fmt: skip
    try:
        for event in events + events:  # every task delivered twice
            handler(event, None)
        assert count(handler, EVENTS) == 3
        assert count(handler, RECORDINGS) == 1
    finally:
        handler.store.close()


def test_the_default_database_is_a_sqlite_file(make_context: MakeContext) -> None:
    context = make_context(HANDLERS="store")
    assert context.settings.database_url == "sqlite:///./data/roomrec.db"


def test_an_unmigrated_postgresql_database_is_retried_naming_the_command(
    make_context: MakeContext, empty_database: MakeDatabase
) -> None:
    with empty_database("postgresql") as url:
        handler = handler_for(make_context, url)
        try:
            with pytest.raises(TransientError, match=UPGRADE_COMMAND):
                handler(Room().event("room-created", 0), None)
        finally:
            handler.store.close()


def test_an_unreachable_database_is_retried(make_context: MakeContext) -> None:
    handler = handler_for(make_context, "postgresql://roomrec:s3cret@127.0.0.1:1/roomrec")
    try:
        with pytest.raises(TransientError, match="database unavailable") as caught:
            handler(Room().event("room-created", 0), None)
    finally:
        handler.store.close()
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["mysql://u:p@h/db", "redis://localhost:6379/0", "roomrec.db", "sqlite:/x.db"]
)
def test_an_unsupported_database_url_stops_the_worker_naming_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL") as caught:
        worker_settings(HANDLERS="store", DATABASE_URL=url)
    assert "p@h" not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db.example/rec", "postgresql+psycopg://u:***@db.example/rec"),
        ("postgresql://u:p@db.example/rec", "postgresql+psycopg://u:***@db.example/rec"),
        ("postgresql+psycopg://u@db.example/rec", "postgresql+psycopg://u@db.example/rec"),
        ("sqlite:///./data/roomrec.db", "sqlite:///./data/roomrec.db"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given: str, used: str) -> None:
    assert shown(database_url(given)) == used
