"""The results as markdown (printed, and kept in BENCHMARKS.md between two markers) and as
JSON (``bench/results/latest.json``, merged per benchmark when only some were run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TITLES = {
    "ingest": "1. Ingest",
    "drain": "2. Drain",
    "latency": "3. Latency",
    "memory": "4. Memory",
    "archive": "5. Archive",
    "concurrency": "6. Concurrency",
    "roundtrips": "7. Round trips",
    "rabbitmq": "8. RabbitMQ",
}
START = "<!-- bench:results:start (written by `python -m bench`; do not edit by hand) -->"
END = "<!-- bench:results:end -->"


def _verdict(target: dict[str, Any]) -> str:
    passed = target.get("passed")
    mark = "PASS" if passed else "MISS" if passed is False else "—"
    return mark + ("\\*" if target.get("note") else "")


def _measured(target: dict[str, Any]) -> str:
    value = target.get("measured")
    return "—" if value is None else f"{value:g}{target.get('unit', '')}"


def machine_line(machine: dict[str, Any]) -> str:
    load = machine.get("load_average_at_start")
    end = machine.get("load_average_at_end")
    return (
        f"{machine.get('nproc')} CPUs ({machine.get('cpu_model')}), "
        f"{machine.get('memory_mib')} MiB RAM, Linux {machine.get('kernel')}, "
        f"{machine.get('os')}, Python {machine.get('python')}; "
        f"load average at start {load}, at end {end}"
    )


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Run of {results.get('finished_at', '?')} (`{results.get('command', '')}`), "
        f"{machine_line(results.get('machine', {}))}.",
        "",
        "| benchmark | target | baseline | subject | measured | verdict |",
        "|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    others: list[str] = []
    for name, title in TITLES.items():
        result = results.get("benchmarks", {}).get(name)
        if result is None:
            continue
        if result.get("status") != "ok":
            others.append(f"- {title}: {result.get('status')}: {result.get('reason', '')}")
            continue
        for target in result.get("targets", []):
            lines.append(
                f"| {title}: {target['name']} | {target['target']} | "
                f"{target.get('baseline') or '—'} | {target.get('subject') or '—'} | "
                f"{_measured(target)} | {_verdict(target)} |"
            )
            if target.get("note"):
                notes.append(f"\\* {target['name']}: {target['note']}.")
    started = results.get("started_at", "")
    older = [
        f"- {TITLES[name]}: measured at {result.get('measured_at')}, in an earlier run."
        for name, result in results.get("benchmarks", {}).items()
        if name in TITLES and str(result.get("measured_at", "")) < started
    ]
    lines += ["", *notes] if notes else []
    benchmarks = results.get("benchmarks", {})
    references = [
        f"| {title}: {item['name']} | {_measured(item)} | {item['meaning']} |"
        for name, title in TITLES.items()
        if benchmarks.get(name, {}).get("status") == "ok"
        for item in benchmarks[name].get("references", [])
    ]
    if references:
        lines += ["", "Reference points (no target of their own):", ""]
        lines += ["| reference | measured | what it shows |", "|---|---|---|", *references]
    lines += ["", *others] if others else []
    lines += ["", *older] if older else []
    return "\n".join(lines) + "\n"


def write_json(path: Path, results: dict[str, Any], *, merge: bool) -> dict[str, Any]:
    """Write ``results``; with ``merge``, benchmarks not run now keep their last results."""
    if merge and path.exists():
        previous = json.loads(path.read_text())
        benchmarks = previous.get("benchmarks", {}) | results["benchmarks"]
        results = results | {"benchmarks": benchmarks}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return results


def update_document(path: Path, block: str) -> bool:
    """Replace what lies between the markers of ``path`` with ``block``; False without them."""
    if not path.exists():
        return False
    text = path.read_text()
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{block}{END}{tail}")
    return True
