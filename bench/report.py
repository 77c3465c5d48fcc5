"""The markdown of ``docs/benchmarks.md``: the results table, the machine, the date, the command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

COMMAND = "make bench  # = bash scripts/bench.sh: scripts/bootstrap.sh, then .venv/bin/python -m bench"


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


def render(
    results: list[dict[str, Any]],
    *,
    started: dt.datetime,
    seconds: float,
    load_start: str,
    load_end: str,
    versions: dict[str, str],
) -> str:
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
            lines.append(
                "| "
                + " | ".join(_cell(r[k]) for k in ("benchmark", "metric", "target", "measured", "reference"))
                + f" | {verdict} |"
            )
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
        if failed and result.get("why"):
            lines.append(f"- Why it fails (from this run's figures): {result['why']}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
