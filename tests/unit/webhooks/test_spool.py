"""The spool file, as several gunicorn workers open it at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.synchronize import Barrier
from pathlib import Path

from webhooks.spool import Spool

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
