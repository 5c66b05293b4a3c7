"""1. Ingest: signed ``recording-completed`` callbacks per second accepted by the real endpoint
(signature, schema, de-duplication, durable enqueue), against a bare Flask view answering 204.

A third app, the floor (:mod:`bench.floor_app`), only pushes each body onto a Redis list: the
least any endpoint that queues a callback before answering must do. Its rate against bare
Flask bounds the ratio any implementation can reach on the machine at hand.

All of them are served by the same gunicorn command line and server configuration
(:func:`bench.procs.gunicorn_args`: gunicorn.conf.py's gevent worker, 2 processes, one app
after the other on the same port) and loaded by ``wrk`` from its own
process, with pre-signed callbacks that each name a distinct recording (the de-duplication
never short-circuits). Each round runs the three back to back, the order rotating from round
to round, and ratios pair runs of the same round; each run is preceded by a short warm-up.
Before every measured run Redis is emptied, so the queue starts empty and every callback is
new; afterwards the real endpoint's queue must hold one message per accepted callback.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import callbacks
from bench.env import BenchEnv
from bench.floor_app import FLOOR_QUEUE
from bench.procs import server_settings, start_gunicorn
from bench.stats import at_least, at_most, median, per_round_ratio, ratio, reference, rounded, shown
from bench.tools import ensure
from devtools.redis_server import free_port
from workers.delivery.celery_app import EVENTS_QUEUE

log = logging.getLogger(__name__)

LUA = Path(__file__).with_name("wrk_callbacks.lua")
APPS = {
    "bare": "bench.bare_app:create_app()",
    "floor": "bench.floor_app:create_app()",
    "checked": "bench.floor_app:create_checked_app()",
    "real": "webhooks:create_app()",
}


def write_requests(env: BenchEnv, count: int) -> Path:
    """``count`` signed callbacks, one per line, for the wrk script."""
    path = env.path("ingest-requests.txt")
    with path.open("w") as out:
        for signed in callbacks.signed_callbacks(callbacks.recordings(env.rng, count)):
            out.write(f"{signed.signature} {signed.body}\n")
    return path


@dataclass(frozen=True)
class WrkOptions:
    threads: int = 1
    connections: int = 8
    seconds: float = 10
    warmup: float = 2

    def describe(self) -> str:
        return (f"wrk -t{self.threads} -c{self.connections} -d{self.seconds:g}s --latency, "
                f"after a {self.warmup:g}s warm-up")  # fmt: skip


def run_wrk(
    wrk: str, url: str, requests: Path, options: WrkOptions, seconds: float
) -> dict[str, Any]:
    command = [
        wrk, f"-t{options.threads}", f"-c{options.connections}", f"-d{seconds:g}s", "--latency",
        "-s", str(LUA), url, "--", str(requests), str(options.threads),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH-JSON "))
            figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
            return figures
    raise RuntimeError(f"wrk printed no figures (rc {result.returncode}):\n{result.stderr[-2000:]}")


def one_run(env: BenchEnv, wrk: str, name: str, requests: Path, options: WrkOptions,
            *, last: bool) -> dict[str, Any]:  # fmt: skip
    port = free_port()
    log_path = env.path(f"logs/ingest-{name}-{port}.log")
    web = start_gunicorn(APPS[name], port, env.web_config(), log_path)
    try:
        url = f"http://127.0.0.1:{port}{callbacks.CALLBACK_PATH}"
        if options.warmup:
            run_wrk(wrk, url, requests, options, options.warmup)
            settle(env)  # the requests wrk cut off at its end are still being answered
        env.flush()  # the warm-up's callbacks are forgotten: every measured one is new
        figures = run_wrk(wrk, url, requests, options, options.seconds)
        if name in ("floor", "checked"):
            settle(env)
            with env.client() as client:
                figures["queued"] = client.llen(FLOOR_QUEUE)
        if name == "real":
            settle(env)
            with env.client() as client:
                figures["queued"] = client.llen(EVENTS_QUEUE)
            accepted = figures["requests"] - figures["status_errors"]
            # wrk counts requests completed; one cut off at the end may still have been queued.
            figures["all_accepted_were_queued"] = figures["queued"] >= accepted
            check_real_run(figures)
            if last:
                env.sample_memory("gunicorn", web, "ingest")
    finally:
        web.stop()
    if name != "bare":
        env.flush()  # keep Redis' memory flat between rounds (the web stopped: nothing lands)
    log.info("ingest %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms", name, figures["rps"],
             figures["p50_us"] / 1000, figures["p99_us"] / 1000)  # fmt: skip
    return {"app": name, **figures}


def settle(env: BenchEnv, *, quiet: float = 0.2, timeout: float = 5.0) -> None:
    """Wait until Redis has taken no new key for ``quiet`` seconds: wrk stops with requests
    in flight, and the web still queues them after it."""
    deadline = time.monotonic() + timeout
    with env.client() as client:
        size, since = client.dbsize(), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.05)
            now = client.dbsize()
            if now != size:
                size, since = now, time.monotonic()


def check_real_run(figures: dict[str, Any]) -> None:
    """Every callback sent is valid and new: a refused or unqueued one means the figures
    measure something else than ingest (a signature mismatch answers 403 fast)."""
    if figures["status_errors"] > figures["requests"] / 1000:
        raise RuntimeError(
            f"the real endpoint refused {figures['status_errors']} of {figures['requests']} "
            "callbacks (see its log with --keep)"
        )
    if not figures["all_accepted_were_queued"]:
        raise RuntimeError(
            f"{figures['queued']} messages queued for {figures['requests']} callbacks accepted"
        )


def run(env: BenchEnv, *, rounds: int = 3, options: WrkOptions | None = None,
        requests: int = 60_000) -> dict[str, Any]:  # fmt: skip
    options = options or WrkOptions()
    wrk = ensure("wrk")
    signed = write_requests(env, requests)
    runs: list[dict[str, Any]] = []
    for number in range(rounds):
        shift = number % len(APPS)  # each app first, in the middle and last in turn
        order = [*APPS][shift:] + [*APPS][:shift]
        for name in order:
            figures = one_run(env, wrk, name, signed, options, last=number == rounds - 1)
            runs.append({"round": number + 1, **figures})
    return summarise(runs, options, requests)


def summarise(runs: list[dict[str, Any]], options: WrkOptions, requests: int) -> dict[str, Any]:
    def med(app: str, key: str, scale: float = 1.0) -> float | None:
        value = median(run[key] for run in runs if run["app"] == app)
        return None if value is None else value / scale

    def paired(subject: str, value: str, baseline: str = "bare") -> tuple[float | None, list]:
        return per_round_ratio(runs, field="app", subject=subject, baseline=baseline, value=value)

    bare_rps, real_rps = med("bare", "rps"), med("real", "rps")
    bare_p99, real_p99 = med("bare", "p99_us", 1000), med("real", "p99_us", 1000)
    rate_ratio, rate_ratios = paired("real", "rps")
    p99_ratio, p99_ratios = paired("real", "p99_us")
    floors = {name: (paired(name, "rps"), paired(name, "p99_us")) for name in ("floor", "checked")}

    def floor_figures(name: str) -> dict[str, Any]:
        (rate, rates), (p99, p99s) = floors[name]
        return {
            f"{name}_rps": rounded(med(name, "rps"), 1),
            f"{name}_p99_ms": rounded(med(name, "p99_us", 1000)),
            f"{name}_rate_ratio": rounded(rate),
            f"{name}_p99_ratio": rounded(p99),
            f"{name}_rate_ratios_per_round": rates,
            f"{name}_p99_ratios_per_round": p99s,
        }

    real_of_checked, real_of_checked_ratios = paired("real", "rps", "checked")
    return {
        "method": {
            "gunicorn": server_settings(),
            "floor": "one LPUSH of the body per callback, RESP by hand over kept sockets, one per "
            "push in flight in the process",
            "checked": "the floor after the signature check and the schema load of the real "
            "endpoint's own functions",
            "wrk": options.describe(),
            "distinct_signed_callbacks": requests,
            "redis": "private redis-server, appendonly yes, appendfsync everysec",
            "log_level": "INFO",
        },
        "figures": {
            "bare_rps": rounded(bare_rps, 1),
            "real_rps": rounded(real_rps, 1),
            "bare_p50_ms": rounded(med("bare", "p50_us", 1000)),
            "real_p50_ms": rounded(med("real", "p50_us", 1000)),
            "bare_p99_ms": rounded(bare_p99),
            "real_p99_ms": rounded(real_p99),
            "rate_ratio": rounded(rate_ratio),
            "p99_ratio": rounded(p99_ratio),
            "rate_ratios_per_round": rate_ratios,
            "p99_ratios_per_round": p99_ratios,
            "rate_ratio_of_medians": rounded(ratio(real_rps, bare_rps)),
            **floor_figures("floor"),
            **floor_figures("checked"),
            "real_of_checked_rate_ratio": rounded(real_of_checked),
            "real_of_checked_rate_ratios_per_round": real_of_checked_ratios,
            "p99_ratio_of_medians": rounded(ratio(real_p99, bare_p99)),
            "real_errors": sum(run["status_errors"] for run in runs if run["app"] == "real"),
            "all_accepted_were_queued": all(
                run.get("all_accepted_were_queued", True) for run in runs
            ),
        },
        "targets": [
            at_least(
                "req/s vs bare Flask",
                rate_ratio,
                0.6,
                "x",
                baseline=f"bare Flask {shown(bare_rps)} req/s",
                subject=f"real endpoint {shown(real_rps)} req/s",
            ),
            at_most(
                "p99 vs bare Flask",
                p99_ratio,
                2.0,
                "x",
                baseline=f"bare p99 {shown(bare_p99, '.2f')} ms",
                subject=f"real p99 {shown(real_p99, '.2f')} ms",
            ),
        ],
        "references": [
            reference(
                "floor req/s vs bare Flask",
                floors["floor"][0][0],
                "x",
                meaning=f"one LPUSH per callback and nothing else ({shown(med('floor', 'rps'))} "
                "req/s): the most any endpoint that queues before it answers reaches here",
            ),
            reference(
                "checked floor req/s vs bare Flask",
                floors["checked"][0][0],
                "x",
                meaning="the floor after the signature check and the marshmallow load "
                f"({shown(med('checked', 'rps'))} req/s): the most an endpoint that checks "
                "both, as the service must, reaches here",
            ),
            reference(
                "checked floor p99 vs bare Flask",
                floors["checked"][1][0],
                "x",
                meaning=f"its p99 ({shown(med('checked', 'p99_us', 1000), '.2f')} ms) against "
                "bare's: the least such an endpoint reaches here",
            ),
            reference(
                "real req/s vs the checked floor",
                real_of_checked,
                "x",
                meaning="what de-duplication, the ledger, Celery's message, the log line, "
                "metrics and the spool check leave of it",
            ),
        ],
        "runs": runs,
    }
