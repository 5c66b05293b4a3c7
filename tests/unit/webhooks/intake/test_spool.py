"""The spool file, as several gunicorn workers open it at once."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from schemas import EventMessage, load_callback
from tests.support.twilio import recording_params
from webhooks.errors import SpoolFull
from webhooks.intake.spool import Spool
from workers.delivery.dedup import event_id

OPENERS = 8


def _open(path: str, start: Barrier) -> None:
    start.wait(10)  # all at the same instant, as gunicorn boots its workers
    Spool(Path(path)).pending()


def test_many_processes_opening_a_new_spool_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(15):  # a race: several fresh files
        path = str(tmp_path / f"spool-{attempt}.sqlite3")
        start = context.Barrier(OPENERS)
        openers = [context.Process(target=_open, args=(path, start)) for _ in range(OPENERS)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(30)
        assert [opener.exitcode for opener in openers] == [0] * OPENERS, f"round {attempt}"
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- one row per event id, a bound, an upgrade of an older file ------------------------------


def message(params: dict[str, str] | None = None) -> EventMessage:
    params = params or recording_params()
    return EventMessage(id=event_id(params), event=load_callback(params),
                        received_at=datetime.now(UTC))  # fmt: skip


def rows(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as check:
        return [row[0] for row in check.execute("SELECT id FROM spool ORDER BY seq")]


def test_a_replayed_event_is_spooled_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    first, other = message(), message()
    assert spool.append(first) is True
    assert [spool.append(first) for _ in range(300)] == [False] * 300
    assert spool.append(other) is True
    assert spool.pending() == 2
    assert rows(spool.path) == [first.id, other.id]


def test_the_spool_holds_at_most_max_events(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_events=2)
    kept = [message(), message()]
    for one in kept:
        spool.append(one)
    with pytest.raises(SpoolFull) as caught:
        spool.append(message())
    assert caught.value.status == 503 and caught.value.slug == "spool-full"
    assert "Retry-After" in caught.value.headers
    assert spool.append(kept[0]) is False  # already kept: no refusal for a duplicate
    assert spool.pending() == 2

    assert spool.drain(lambda m: True, batch=1) == 1
    assert spool.pending() == 1
    spool.append(message())  # room again
    assert spool.pending() == 2


def test_every_process_shares_the_count(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    one, two = Spool(path), Spool(path)
    one.append(message())
    two.append(message())
    assert one.pending() == two.pending() == 2
    two.drain(lambda m: True)
    assert one.pending() == 0


def test_a_spool_of_the_old_layout_is_upgraded_keeping_the_oldest_of_each_event(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.sqlite3"
    first, second = message(), message()
    with closing(sqlite3.connect(path)) as old:  # as the code before one row per event wrote it
        old.execute("CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "id TEXT NOT NULL, message TEXT NOT NULL)")  # fmt: skip
        for one in (first, first, second, first, second):
            old.execute("INSERT INTO spool (id, message) VALUES (?, ?)",
                        (one.id, json.dumps(one.to_json())))  # fmt: skip
        old.commit()

    spool = Spool(path)

    assert rows(path) == [first.id, second.id]
    assert spool.pending() == 2
    assert spool.append(first) is False
    assert Spool(path).pending() == 2  # opening it again changes nothing
    queued: list[str] = []

    def enqueue(spooled: EventMessage) -> bool:
        queued.append(spooled.id)
        return True

    spool.drain(enqueue)
    assert queued == [first.id, second.id] and spool.pending() == 0
