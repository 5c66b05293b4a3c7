"""7. Round trips: the Redis commands and HTTP requests one ``recording-completed`` costs on its
success path, counted per side, for ``HANDLERS=log,forward`` and ``log,forward,store``.

- **web**: from the signed callback's request to its answer (``gunicorn``, the real web);
- **worker**: from the message to its acknowledgement, in the worker's main process (kombu:
  the ``BRPOP``, the ``unacked`` bookkeeping, the ack) and its pool process (the task), the
  real ``python -m workers`` with the drain's command line.

The run's private redis-server is watched with ``MONITOR``, which names the connection of
every command and lists the commands a script ran right after the call that ran it. Each
connection is traced to the process that holds its socket (``/proc``), hence to its side.
A round trip is one command, one ``MULTI`` … ``EXEC`` transaction, or one script call;
*commands* are those a client sent (``MULTI`` and ``EXEC`` included), *script commands* those
its scripts ran. (A pipeline without ``MULTI`` would count a round trip per command; none is on
this path.) HTTP requests are counted where they arrive: the emulator's request log and the
receiver's POSTs.

The web is counted alone first: no worker runs, so any HTTP request is the web's. Then with a
worker, started afresh for each set of handlers. Each side is warmed up until two events in a
row cost the same (connections made, scripts loaded, the store migrated): the counts are the
steady state's. Events go one at a time, each in a window of its own from its request to its
ack. The figure is the count most windows gave, with how many agreed and what the others
counted: a window can catch a worker's periodic work (the pump's script every 0.5 s, kombu's
``BRPOP`` timeout every second, its restore every 10 s).

Run alone as ``python -m bench roundtrips`` (about 30 seconds).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from bench import callbacks
from bench.env import UNACKED_KEYS, BenchEnv
from bench.procs import start_celery, start_gunicorn
from bench.stats import reference
from devtools.processes import ManagedProcess, children
from devtools.redis_server import free_port

log = logging.getLogger(__name__)

HANDLER_SETS = ("log,forward", "log,forward,store")
CONCURRENCY = 2  # the drain's worker command line
SCRIPT_CALLS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})
LUA = "lua"  # MONITOR's name for the client of a command run by a script
WEB, MAIN, POOL = "web", "worker main", "worker pool"
FORWARD = "POST forward target"
_SID = re.compile(r"\b([A-Z]{2})[0-9a-f]{32}\b")


@dataclass(frozen=True, slots=True)
class Command:
    """One command as MONITOR reported it; ``args`` split at spaces, which keeps the name and
    the keys whole (the values may be cut)."""

    time: float
    client: str  # the connection's "host:port", or LUA for a command a script ran
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.args[0].upper() if self.args else ""

    @classmethod
    def from_monitor(cls, entry: Mapping[str, Any]) -> Command:
        """From what redis-py's ``Monitor.next_command`` returns."""
        client = (
            LUA
            if entry["client_type"] == LUA
            else f"{entry['client_address']}:{entry['client_port']}"
        )
        return cls(float(entry["time"]), client, tuple(str(entry["command"]).split(" ")))


@dataclass
class Tally:
    """What one side cost in Redis: round trips, commands sent, commands its scripts ran."""

    round_trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    scripted: Counter[str] = field(default_factory=Counter)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.round_trips + other.round_trips, self.commands + other.commands,
                     self.scripted + other.scripted)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "round_trips": self.round_trips,
            "commands": self.commands.total(),
            "script_commands": self.scripted.total(),
            "by_command": dict(sorted(self.commands.items())),
            "in_scripts": dict(sorted(self.scripted.items())),
        }


def tally(commands: Iterable[Command], side_of: Callable[[str], str | None]) -> dict[str, Tally]:
    """Per side, the cost of ``commands`` (in MONITOR's order); ``side_of`` names the side of
    a connection, None to leave its commands out (and those its scripts ran)."""
    found: dict[str, Tally] = {}
    in_multi: set[str] = set()
    script_side: str | None = None  # whose script call the next LUA lines belong to
    for command in commands:
        if command.client == LUA:
            if script_side is not None:
                found[script_side].scripted[command.name] += 1
            continue
        side = side_of(command.client)
        script_side = side if command.name in SCRIPT_CALLS else None
        if side is None:
            continue
        counted = found.setdefault(side, Tally())
        counted.commands[command.name] += 1
        if command.name == "MULTI":
            in_multi.add(command.client)
            counted.round_trips += 1
        elif command.name in ("EXEC", "DISCARD"):
            in_multi.discard(command.client)
        elif command.client not in in_multi:
            counted.round_trips += 1
    return found


class Recorder:
    """``MONITOR`` on a connection of its own, read by a thread: every command Redis runs."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.commands: list[Command] = []
        self._lock = threading.Lock()
        self._monitor: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Recorder:
        self._monitor = self.client.monitor().__enter__()  # returns once MONITOR said OK
        self._thread = threading.Thread(target=self._read, name="bench-monitor", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            while True:
                command = Command.from_monitor(self._monitor.next_command())
                with self._lock:
                    self.commands.append(command)
        except (redis.RedisError, OSError, ValueError):  # the connection closed by __exit__
            return

    def __exit__(self, *_: object) -> None:
        self._monitor.connection.disconnect()
        if self._thread is not None:
            self._thread.join(5)
        self.client.close()

    def since(self, start: float) -> list[Command]:
        with self._lock:
            return [command for command in self.commands if command.time >= start]

    def wait(self, until: Callable[[list[Command]], float | None], start: float,
             timeout: float) -> float:  # fmt: skip
        """Poll the commands since ``start`` until ``until`` returns the time it looked for."""
        deadline = time.monotonic() + timeout
        while (found := until(self.since(start))) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not seen within {timeout:.0f}s")
            time.sleep(0.005)
        return found


def acked_at(commands: Sequence[Command]) -> float | None:
    """The time of kombu's ack (its transaction removing the delivery from ``unacked``)."""
    for index, command in enumerate(commands):
        if command.args[:2] == ("HDEL", UNACKED_KEYS[0]):
            for later in commands[index:]:
                if later.client == command.client and later.name == "EXEC":
                    return later.time
    return None


def request_name(request: Mapping[str, Any]) -> str:
    """``GET /v1/Rooms/{RM}/Recordings/{RT}``: an emulator request, its SIDs left out."""
    path = _SID.sub(r"{\1}", request["path"])
    return f"{request['method']} {path}"


def _address(hexadecimal: str) -> str:
    ip, port = hexadecimal.split(":")
    return f"{socket.inet_ntoa(struct.pack('<I', int(ip, 16)))}:{int(port, 16)}"


def socket_owners(pids: Iterable[int], port: int) -> dict[str, int]:
    """Which of ``pids`` holds each IPv4 TCP connection to ``port``, by the connection's
    ``host:port`` as MONITOR names it (``/proc/net/tcp`` and each process' descriptors)."""
    local: dict[str, str] = {}  # socket inode -> its host:port
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].rsplit(":", 1)[1], 16) == port:
            local[fields[9]] = _address(fields[1])
    owners: dict[str, int] = {}
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in local:
                owners[local[target[8:-1]]] = pid
    return owners


def steady(windows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The count most windows gave, with how many windows there were and agreed, and what
    each window that disagreed counted (round trips, commands, script commands per side)."""
    keys = Counter(json.dumps(window, sort_keys=True) for window in windows)
    key, agreeing = keys.most_common(1)[0]
    others = [
        {side: [part[name] for name in ("round_trips", "commands", "script_commands")]
         for side, part in window.items() if side != "http"}
        | {"http": window.get("http", {})}
        for window in windows if json.dumps(window, sort_keys=True) != key
    ]  # fmt: skip
    return {**json.loads(key), "windows": len(windows), "agreeing": agreeing, "others": others}


class Stack:
    """The processes under test, their sides, and one event at a time through them."""

    def __init__(self, env: BenchEnv, web_port: int, web: ManagedProcess) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{web_port}{callbacks.CALLBACK_PATH}"
        self.web = web
        self.worker: ManagedProcess | None = None
        self.signer = callbacks.Signer()
        self.session = requests.Session()
        self.rng = random.Random(7)

    def roles(self) -> dict[int, str | None]:
        found: dict[int, str | None] = {os.getpid(): None}  # the bench's own: left out
        for process, main, pool in ((self.web, WEB, WEB), (self.worker, MAIN, POOL)):
            if process is not None and process.process is not None:
                found[process.process.pid] = main
                found |= dict.fromkeys(children(process.process.pid), pool)
        return found

    def event(self, recorder: Recorder, recording: callbacks.BenchRecording) -> dict[str, Any]:
        """One callback, counted from its request to its answer (no worker) or its ack."""
        time.sleep(self.rng.uniform(0.05, 0.3))  # off the beat of the workers' timers
        control = self.env.emulator.control
        served, posts = len(control.requests()), self.env.receiver.stats()["posts"]
        signed = self.signer.sign(callbacks.completed_params(recording))
        start = time.time()
        answer = self.session.post(self.url, data=signed.body,
                                   headers=self.signer.headers(signed), timeout=30)  # fmt: skip
        answered = time.time()
        if answer.status_code != 204:
            raise RuntimeError(f"the web answered {answer.status_code}: {answer.text[:300]}")
        end = answered if self.worker is None else recorder.wait(acked_at, start, timeout=30)
        time.sleep(0.05)  # MONITOR's lines of the last commands reach the recorder
        roles = self.roles()
        owners = socket_owners(roles, self.env.redis.port)
        commands = [command for command in recorder.since(start) if command.time <= end]
        unattributed = {c.client for c in commands if c.client != LUA and c.client not in owners}
        if unattributed:
            raise RuntimeError(f"commands from connections of no known process: {unattributed}")
        counted = tally(commands, lambda client: roles[owners[client]])
        http = Counter(request_name(r) for r in control.requests()[served:])
        http[FORWARD] += self.env.receiver.stats()["posts"] - posts
        window: dict[str, Any] = {side: part.to_json() for side, part in counted.items()}
        if MAIN in counted or POOL in counted:
            window["worker"] = (counted.get(MAIN, Tally()) + counted.get(POOL, Tally())).to_json()
        window["http"] = {name: count for name, count in sorted(http.items()) if count}
        return window

    def count(self, recorder: Recorder, recordings: Iterator[callbacks.BenchRecording], *,
              windows: int, warm_up: int) -> dict[str, Any]:  # fmt: skip
        """Warm up (at least ``warm_up`` events, until two in a row cost the same), then count
        ``windows`` events."""
        previous: dict[str, Any] | None = None
        for number in range(warm_up + 10):
            window = self.event(recorder, next(recordings))
            if number + 1 >= warm_up and window == previous:
                break
            previous = window
        else:
            log.warning("roundtrips: no two warm-up events in a row cost the same")
        return steady([self.event(recorder, next(recordings)) for _ in range(windows)])

    def start_worker(self, handlers: str, number: int) -> None:
        config = self.env.worker_config(self.env.path(f"roundtrips-{number}.sqlite3"),
                                        HANDLERS=handlers)  # fmt: skip
        log_path = self.env.path(f"logs/roundtrips-worker-{number}.log")
        self.worker, _ = start_celery("workers", CONCURRENCY, config, log_path)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


def _summary(figures: Mapping[str, Any]) -> str:
    """``1 round trip(s), 1 command(s) + 5 in scripts (EVALSHA; EXISTS, SET, …)``."""
    sent = ", ".join(f"{name} {count}" for name, count in figures["by_command"].items())
    ran = ", ".join(f"{name} {count}" for name, count in figures["in_scripts"].items())
    return (f"{figures['commands']} commands ({sent})"
            + (f" + {figures['script_commands']} in scripts ({ran})" if ran else ""))  # fmt: skip


def _http(figures: Mapping[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in figures.items()) or "none"


def references(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The counts as reference points of the report (they have no target)."""
    web = figures["web"]
    found = [
        reference("web: Redis round trips per callback", web[WEB]["round_trips"],
                  meaning=f"{_summary(web[WEB])}; HTTP requests: {_http(web['http'])}"),
    ]  # fmt: skip
    for handlers in HANDLER_SETS:
        if handlers not in figures:
            continue
        here = figures[handlers]
        found.append(reference(
            f"worker ({handlers}): Redis round trips per event", here["worker"]["round_trips"],
            meaning=f"main process (kombu): {_summary(here[MAIN])}; pool process (the task): "
            f"{_summary(here[POOL])}; HTTP requests: {_http(here['http'])}",
        ))  # fmt: skip
    return found


def run(env: BenchEnv, *, windows: int = 5, warm_up: int = 3,
        handler_sets: Sequence[str] = HANDLER_SETS) -> dict[str, Any]:  # fmt: skip
    """The web's counts, then the worker's for each of ``handler_sets``."""
    recordings = iter(env.recordings((windows + warm_up + 12) * (1 + len(handler_sets))))
    port = free_port()
    web = start_gunicorn("webhooks:create_app()", port, env.web_config(),
                         env.path("logs/roundtrips-web.log"))  # fmt: skip
    stack = Stack(env, port, web)
    figures: dict[str, Any] = {}
    try:
        with Recorder(env.client()) as recorder:
            figures["web"] = stack.count(recorder, recordings, windows=windows, warm_up=warm_up)
            for number, handlers in enumerate(handler_sets):
                env.flush()  # what the web queued alone goes, and nothing else is queued
                stack.start_worker(handlers, number)
                try:
                    figures[handlers] = stack.count(recorder, recordings, windows=windows,
                                                    warm_up=warm_up)  # fmt: skip
                finally:
                    stack.stop_worker()
    finally:
        stack.session.close()
        web.stop()
    return {
        "method": {
            "web": "gunicorn -c gunicorn.conf.py (as the ingest benchmark), counted alone",
            "worker": f"python -m workers --pool prefork --concurrency {CONCURRENCY} (as the "
            "drain), with the web; forward to the bare receiver, store in SQLite",
            "counted": "MONITOR on the run's redis-server, each connection traced to its "
            "process; a transaction or a script call is one round trip",
            "windows": windows,
            "warm_up_events": warm_up,
        },
        "figures": figures,
        "references": references(figures),
    }
