"""``python -m bench``: the benchmarks of the service (``make bench`` runs them all).

Each benchmark compares the service with a baseline measured side by side in the same run on
the same machine (alternating, several rounds, medians), so the ratios hold where absolute
figures drift. Results go to ``bench/results/latest.json`` (with ``--only``, merged into the
previous results), the figures table of BENCHMARKS.md, and standard output as markdown.
Nothing is asserted: a missed target is reported, not failed; the exit status is 1 only when
a benchmark could not run to its end.

    python -m bench                          # all eight, about 15 minutes
    python -m bench --only ingest,archive    # some of them
    python -m bench roundtrips drain         # the same, named as arguments
    python -m bench --quick                  # a smoke run: small sizes, writes nothing
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    archive,
    concurrency,
    drain,
    ingest,
    latency,
    machine,
    memory,
    rabbitmq,
    report,
    roundtrips,
)
from bench.env import BenchEnv
from bench.tools import ToolMissing

log = logging.getLogger("bench")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"
DOCUMENT = HERE.parent / "BENCHMARKS.md"
ORDER = ("ingest", "drain", "latency", "archive", "concurrency", "roundtrips", "rabbitmq", "memory")
SAMPLERS = ("ingest", "drain", "latency", "concurrency")  # what memory reads from

Runner = Callable[[BenchEnv], dict[str, Any]]


def runners(quick: bool) -> dict[str, Runner]:
    if quick:
        return {
            "ingest": lambda env: ingest.run(
                env, rounds=1, requests=20_000, options=ingest.WrkOptions(seconds=3, warmup=1)
            ),
            "drain": lambda env: drain.run(env, rounds=1, events=300),
            "latency": lambda env: latency.run(env, rate=20, seconds=5, grace=20),
            "archive": lambda env: archive.run(env, rounds=1),
            "concurrency": lambda env: concurrency.run(
                env, rounds=1, events=200, ideal_fetches=200
            ),
            "roundtrips": lambda env: roundtrips.run(env, windows=2, warm_up=2),
            "rabbitmq": lambda env: rabbitmq.run(
                env,
                rounds=1,
                events=300,
                ingest_rounds=1,
                requests=20_000,
                options=ingest.WrkOptions(seconds=3, warmup=1),
            ),
            "memory": memory.run,
        }
    return {
        "ingest": ingest.run,
        "drain": drain.run,
        "latency": latency.run,
        "archive": archive.run,
        "concurrency": concurrency.run,
        "roundtrips": roundtrips.run,
        "rabbitmq": rabbitmq.run,
        "memory": memory.run,
    }


def selected(only: str | None) -> list[str]:
    if not only:
        return list(ORDER)
    names = {name.strip() for name in only.split(",") if name.strip()}
    unknown = names - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; one of {ORDER}")
    if "memory" in names and not names & set(SAMPLERS):
        log.warning("memory samples the processes of the other runs: adding latency")
        names.add("latency")
    return [name for name in ORDER if name in names]


def run_one(name: str, runner: Runner, env: BenchEnv) -> dict[str, Any]:
    log.info("running %s", name)
    started = time.monotonic()
    try:
        env.reset()  # each benchmark starts from nothing the previous one left
        result = {"status": "ok", **runner(env)}
    except (ToolMissing, memory.NothingSampled) as exc:
        log.warning("%s skipped: %s", name, exc)
        result = {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # reported, and the other benchmarks still run
        log.error("%s failed: %s", name, exc)
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-4000:]}  # fmt: skip
    result["seconds"] = round(time.monotonic() - started, 1)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="roomrec's benchmarks (make bench runs them all)"
    )
    parser.add_argument("names", nargs="*", metavar="benchmark", help="as --only")
    parser.add_argument("--only", help=f"comma-separated, among {', '.join(ORDER)}")
    parser.add_argument("--quick", action="store_true", help="small sizes; writes nothing")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)  # fmt: skip
    for noisy in ("alembic", "workers.metadata", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    only = ",".join(filter(None, [args.only, *args.names])) or None
    names = selected(only)
    table = runners(args.quick)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench" + "".join(f" {arg}" for arg in (argv or sys.argv[1:])),
        "machine": machine.describe(),
        "benchmarks": {},
    }
    env = BenchEnv(keep=args.keep)
    try:
        for name in names:
            results["benchmarks"][name] = run_one(name, table[name], env)
    finally:
        env.close()
        if args.keep:
            log.info("logs and files kept in %s", env.directory)
    results["machine"]["load_average_at_end"] = machine.load_average()
    results["machine"]["wrk"] = results["machine"]["wrk"] or machine.describe()["wrk"]
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if not (args.quick or args.no_write):
        merged = report.write_json(RESULTS, results, merge=only is not None)
        if report.update_document(DOCUMENT, report.markdown(merged)):
            log.info("updated %s and %s", RESULTS.relative_to(HERE.parent), DOCUMENT.name)
    print(report.markdown(results))
    failed = [n for n, r in results["benchmarks"].items() if r["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
