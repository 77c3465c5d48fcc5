"""The markdown of ``docs/benchmarks.md``: the results table, the machine, the date, the command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

COMMAND = "make bench  # = bash scripts/bench.sh: scripts/bootstrap.sh, then .venv/bin/python -m bench"

#: Why a failing row fails, when the cause is known (shown only when that row fails).
KNOWN_CAUSES = {
    "bulk_send": (
        "The bulk path is bound by client CPU under the GIL, not by the sandbox (see benchmark 5): about "
        "1.3-2 ms of CPU per message across the 32 worker threads (requests/urllib3/http.client per request, "
        "plus `requests`' per-request scan of the environment for proxies, `Session.trust_env`), on 2 cores "
        "shared with the sandbox process. The MemoryLedger row shows the SQLite ledger is not the limit."
    ),
    "report_load": (
        "The transfer parses and shapes every row in Python (a new `csv.reader` per line, a dict and a frozen "
        "dataclass per row, 10 adapter calls per row, psycopg `write_row`), so its cost per row is an order of "
        "magnitude above PostgreSQL's own COPY of the CSV; the stage row shows where the time goes. pandas "
        "`to_sql` over psycopg 3 (pipelined executemany) is only a few times slower than that path."
    ),
    "parse_cost": (
        "Most of the provider's import time is `requests` (about 40 ms, imported at module level by "
        "`client/http.py`, which `operators.sms` reaches through `client.bulk` and `client/__init__`). When the "
        "wall-clock median is above the budget while the CPU median is below it, other processes were "
        "competing for the cores during the run."
    ),
    "trigger_scale": (
        "Each trigger builds its own `httpx.AsyncClient`, and httpx builds a new `ssl.SSLContext` (loading "
        "the whole CA bundle) for every client, even for http:// URLs: tens of ms of CPU per trigger on the "
        "event loop. The what-if row (one shared SSL context) shows the same run without that cost."
    ),
}


def machine() -> dict[str, str]:
    """Cores, memory, CPU model, Python, OS and load of this machine."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "memory": memory,
        "cpu": model,
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": os_name,
    }


def load_average() -> str:
    """The 1/5/15-minute load averages (the machine may be shared)."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(results: list[dict[str, Any]], *, started: dt.datetime, seconds: float, load_start: str,
           load_end: str, versions: dict[str, str]) -> str:
    """The whole ``docs/benchmarks.md``."""
    info = machine()
    results = sorted(results, key=lambda r: r["rows"][0]["benchmark"] if r["rows"] else r["name"])
    verdicts = [r["passed"] for res in results for r in res["rows"] if r["passed"] is not None]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/`); do not edit by hand: the next run rewrites this file.",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; the full run took {seconds / 60:.1f} min.",
        f"- Command: `{COMMAND}`",
        f"- Machine: {info['cores']} cores, {info['memory']} RAM, {info['cpu']}; {info['os']}; {info['python']}.",
        f"- Load average (1/5/15 min) at the start: {load_start}; at the end: {load_end} "
        "(other work may share the machine; figures are from one run).",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "- Loopback only: the sandbox and the stand-in report server run as separate processes on 127.0.0.1; "
        "PostgreSQL and MariaDB are local.",
        "",
        f"**{sum(verdicts)} of {len(verdicts)} targets met.** Rows marked *info* have no target (diagnostics, "
        "and what-if runs that show the effect of a proposed fix).",
        "",
        "| Benchmark | Metric | Target | Measured | Reference / ratio | Result |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for r in result["rows"]:
            verdict = {True: "PASS", False: "**FAIL**", None: "info"}[r["passed"]]
            lines.append("| " + " | ".join(_cell(r[k]) for k in ("benchmark", "metric", "target", "measured",
                                                                 "reference")) + f" | {verdict} |")
    lines += ["", "## How each benchmark measures", ""]
    for result in results:
        lines.append(f"### {result['name']}")
        lines.append("")
        if result.get("error"):
            lines.append(f"The benchmark did not complete: `{_cell(result['error'])}`")
            lines.append("")
        for note in result.get("notes", []):
            lines.append(f"- {note}")
        failed = any(r["passed"] is False for r in result["rows"])
        if failed and result["name"] in KNOWN_CAUSES:
            lines.append(f"- Why it fails: {KNOWN_CAUSES[result['name']]}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
