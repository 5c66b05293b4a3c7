"""What a worker process loads before its pool forks: every module there is resident in the
main process and in each pool process. Each case runs in a fresh interpreter, since this test
process has long imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.processes import REPO
from workers.metadata.engine import make_engine
from workers.metadata.migrate import upgrade

SETTINGS = {
    "REDIS_URL": "redis://127.0.0.1:1/0",  # never connected to
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "FORWARD_URLS": "http://127.0.0.1:9/hook",
    "FORWARD_SECRET": "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "FORWARD_ALLOW_HTTP": "1",
    "METRICS_PORT": "0",
}
# SQLAlchemy with Alembic (the store), boto3 (s3:// archives).
STORE_AND_S3 = {"sqlalchemy", "alembic", "boto3", "botocore"}
# What a store on an up-to-date SQLite database does without: Alembic with mako (about 8 MiB),
# PostgreSQL's dialect, the read API's queries.
NOT_FOR_A_MIGRATED_SQLITE_STORE = {
    "alembic", "mako", "sqlalchemy.dialects.postgresql", "workers.metadata.queries",
}  # fmt: skip
# What `celery` loads for its other commands: `celery amqp`'s shell, the flower plugin.
OTHER_COMMANDS = {"click_repl", "prompt_toolkit", "flower", "tornado"}


def run_python(code: str, **settings: str) -> str:
    """Run ``code`` in a fresh interpreter with the worker settings; its standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "FORWARD_"))}
    env |= SETTINGS | settings | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def modules_after(code: str, **settings: str) -> set[str]:
    """The modules imported once ``code`` has run in a fresh interpreter."""
    listing = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    output = run_python(textwrap.dedent(code) + "\n" + listing, **settings)
    return set(json.loads(output.splitlines()[-1]))


def loaded_after(code: str, **settings: str) -> set[str]:
    """The top-level packages imported once ``code`` has run in a fresh interpreter."""
    return {module.split(".")[0] for module in modules_after(code, **settings)}


@pytest.mark.parametrize("handlers", ["log", "log,forward", "log,forward,stream"])
def test_a_worker_without_store_or_archive_loads_neither_sqlalchemy_nor_boto3(
    handlers: str,
) -> None:
    loaded = loaded_after("import workers; workers.app", HANDLERS=handlers)

    assert "celery" in loaded
    assert not loaded & STORE_AND_S3


def test_the_store_handler_loads_sqlalchemy_when_it_is_configured() -> None:
    loaded = loaded_after(
        "import workers; workers.app", HANDLERS="log,store", DATABASE_URL="sqlite://"
    )

    assert "sqlalchemy" in loaded


# A pool process as deployed: the app built from the environment, its handlers, one event stored.
STORE_ONE_EVENT = """
    import workers
    from tests.support.twilio import sid
    from tests.unit.workers.store_events import Room
    from workers.runtime.context import runtime

    handler = runtime(workers.app).handlers["store"]
    handler(Room().recording("recording-started", sid("RT"), 1), None)
"""


def test_a_store_on_a_migrated_sqlite_database_loads_neither_alembic_nor_postgresql(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/roomrec.db"
    engine = make_engine(url)
    try:
        upgrade(engine)  # as `flask db upgrade` or the first worker process did
    finally:
        engine.dispose()

    loaded = modules_after(STORE_ONE_EVENT, HANDLERS="log,forward,store", DATABASE_URL=url)

    assert {"sqlalchemy", "sqlalchemy.dialects.sqlite", "workers.metadata.revision"} <= loaded
    assert not loaded & NOT_FOR_A_MIGRATED_SQLITE_STORE


def test_a_store_on_an_empty_sqlite_database_loads_alembic_to_migrate_it(tmp_path: Path) -> None:
    migrated = """
        from workers.metadata.migrate import current_revision, head_revision
        from workers.metadata.revision import HEAD_REVISION

        assert current_revision(handler.store.engine) == head_revision() == HEAD_REVISION
    """
    code = textwrap.dedent(STORE_ONE_EVENT) + textwrap.dedent(migrated)

    loaded = modules_after(
        code, HANDLERS="log,forward,store", DATABASE_URL=f"sqlite:///{tmp_path}/roomrec.db"
    )

    assert {"alembic", "workers.metadata.migrate"} <= loaded  # with every dialect Alembic knows


def test_the_worker_launcher_loads_none_of_celerys_other_commands() -> None:
    loaded = loaded_after("import workers.__main__", HANDLERS="log")

    assert "celery" in loaded
    assert not loaded & OTHER_COMMANDS


def test_the_main_process_freezes_its_objects_before_the_pool_forks() -> None:
    code = """
        import gc
        import workers
        from celery import signals
        app = workers.app
        before = gc.get_freeze_count()
        signals.celeryd_after_setup.send(sender="celery@test", instance=None, conf=app.conf)
        print(before, gc.get_freeze_count())
    """
    before, after = map(int, run_python(code, HANDLERS="log").split())

    assert before == 0
    assert after > 10_000  # the modules' objects, the app: about 80,000
