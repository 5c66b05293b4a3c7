"""The benchmarks serve every app (bare Flask, the floors, the service) as the image does:
gunicorn.conf.py's server settings, no flag overriding them; the floors work under them."""

from __future__ import annotations

import json
import subprocess
import sys

import redis

from bench import procs
from devtools.processes import REPO


def test_every_app_gets_the_images_server_settings() -> None:
    bare = procs.gunicorn_args("bench.bare_app:create_app()", 8001)
    real = procs.gunicorn_args("webhooks:create_app()", 8001)
    assert bare[:-1] == real[:-1]  # one command line, only the app differs
    assert real[real.index("-c") + 1] == str(REPO / "gunicorn.conf.py")
    overriding = {"-k", "--worker-class", "--keep-alive", "--worker-connections", "--threads"}
    assert not overriding & set(real)
    cmd = next(
        line for line in (REPO / "Dockerfile").read_text().splitlines() if line[:4] == "CMD "
    )
    assert not overriding & set(json.loads(cmd[4:]))


FLOOR_UNDER_GEVENT = """
from gevent import monkey

monkey.patch_all()

import sys

import gevent

from bench import floor_app

push = floor_app._Pusher(sys.argv[1])
push(b"first")  # the connection of a process that served a request before
gevent.joinall([gevent.spawn(push, b"body-%d" % i) for i in range(50)], raise_error=True)
print(len(push.idle))
push.close()
"""


def test_the_floor_pushes_from_concurrent_greenlets(redis_url: str) -> None:
    """Under the gevent worker many requests of one process push at once; one shared socket
    would refuse the second greenlet (or interleave their answers)."""
    done = subprocess.run(
        [sys.executable, "-c", FLOOR_UNDER_GEVENT, redis_url],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 1 <= int(done.stdout) <= 50
    client = redis.Redis.from_url(redis_url)
    queued = sorted(client.lrange("bench:floor", 0, -1))
    client.close()
    assert queued == sorted([b"first", *(b"body-%d" % i for i in range(50))])
