"""The round-trip counter of ``bench.roundtrips``: a known sequence of commands gives the known
count, from MONITOR lines written by hand and from a real redis-server."""

from __future__ import annotations

import os
import time

import redis

from bench.roundtrips import (
    LUA,
    Command,
    Recorder,
    acked_at,
    request_name,
    socket_owners,
    steady,
    tally,
)
from devtools.redis_server import RedisServer


def sent(client: str, *args: str) -> Command:
    return Command(0.0, client, args)


def test_a_transaction_or_a_script_call_is_one_round_trip():
    commands = [
        sent("127.0.0.1:1", "SET", "k", "1"),
        sent("127.0.0.1:2", "EVALSHA", "f00", "1", "x"),  # another side's script ...
        sent(LUA, "GET", "x"),  # ... and what it ran: neither is counted
        sent("127.0.0.1:1", "MULTI"),
        sent("127.0.0.1:1", "SET", "d", "1"),
        sent("127.0.0.1:2", "GET", "y"),  # between a transaction's commands
        sent("127.0.0.1:1", "HSET", "o", "f", "v"),
        sent("127.0.0.1:1", "EXEC"),
        sent("127.0.0.1:1", "EVALSHA", "ba5", "2", "k", "l"),
        sent(LUA, "EXISTS", "k"),
        sent(LUA, "set", "l", "1"),
        sent("127.0.0.1:1", "mget", "k", "l"),
    ]
    counted = tally(commands, {"127.0.0.1:1": "web"}.get)
    assert list(counted) == ["web"]
    assert counted["web"].to_json() == {
        "round_trips": 4,
        "commands": 7,
        "script_commands": 2,
        "by_command": {"EVALSHA": 1, "EXEC": 1, "HSET": 1, "MGET": 1, "MULTI": 1, "SET": 2},
        "in_scripts": {"EXISTS": 1, "SET": 1},
    }


def test_each_side_counts_its_own_connections():
    commands = [
        sent("127.0.0.1:1", "BRPOP", "q", "1"),
        sent("127.0.0.1:2", "MGET", "a"),
        sent("127.0.0.1:3", "MGET", "b"),
    ]
    sides = {"127.0.0.1:1": "worker main", "127.0.0.1:2": "worker pool",
             "127.0.0.1:3": "worker pool"}  # fmt: skip
    counted = tally(commands, sides.get)
    assert {side: part.round_trips for side, part in counted.items()} == {
        "worker main": 1,
        "worker pool": 2,
    }
    assert (counted["worker main"] + counted["worker pool"]).commands == {"BRPOP": 1, "MGET": 2}


def test_the_count_is_the_one_most_windows_gave():
    usual = {"web": {"round_trips": 1, "commands": 1, "script_commands": 5}, "http": {}}
    odd = {"web": {"round_trips": 2, "commands": 2, "script_commands": 5}, "http": {}}
    found = steady([usual, odd, usual])
    assert found["web"] == usual["web"]
    assert (found["windows"], found["agreeing"]) == (3, 2)
    assert found["others"] == [{"web": [2, 2, 5], "http": {}}]


def test_an_emulator_request_is_named_without_its_sids():
    path = "/v1/Rooms/RM" + "0a" * 16 + "/Recordings/RT" + "1b" * 16
    assert request_name({"method": "GET", "path": path}) == "GET /v1/Rooms/{RM}/Recordings/{RT}"


def test_a_real_redis_server_reports_what_a_client_sent(redis_server: RedisServer):
    client = redis.Redis(port=redis_server.port)
    script = client.register_script(
        "redis.call('SET', KEYS[1], '1') return redis.call('INCR', KEYS[1])"
    )
    client.script_load(script.script)  # else the first call fails once (NOSCRIPT), then loads
    try:
        with Recorder(redis.Redis(port=redis_server.port)) as recorder:
            start = time.time()
            client.set("roundtrips:a", 1)
            with client.pipeline(transaction=True) as pipe:
                pipe.get("roundtrips:a")
                pipe.hset("roundtrips:h", "f", "v")
                pipe.execute()
            script(keys=["roundtrips:b"])
            with client.pipeline(transaction=True) as pipe:  # as kombu acknowledges
                pipe.zrem("unacked_index", "tag")
                pipe.hdel("unacked", "tag")
                pipe.execute()
            end = recorder.wait(acked_at, start, timeout=10)
            commands = [command for command in recorder.since(start) if command.time <= end]
        owners = socket_owners([os.getpid()], redis_server.port)
        counted = tally(commands, lambda address: "here" if address in owners else None)
    finally:
        client.close()
    assert counted["here"].to_json() == {
        "round_trips": 4,
        "commands": 10,
        "script_commands": 2,
        "by_command": {
            "EVALSHA": 1,
            "EXEC": 2,
            "GET": 1,
            "HDEL": 1,
            "HSET": 1,
            "MULTI": 2,
            "SET": 1,
            "ZREM": 1,
        },  # fmt: skip
        "in_scripts": {"INCR": 1, "SET": 1},
    }
