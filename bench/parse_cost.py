"""DAG parse cost: the import time a DAG pays for the provider, over ``import airflow.sdk``.

Each run is a fresh interpreter (a subprocess) that imports ``airflow.sdk`` first, then every
public provider module a DAG file uses (operators, sensors, notifications, transfers), and times
the second step; the median of ``RUNS`` runs is compared with the target. A first, untimed run
writes the bytecode cache (outside the source tree), as a deployed Airflow has its ``.pyc`` files.
The heavy libraries that must stay lazy (zeep, pandas, phonenumbers) are looked up in
``sys.modules`` after the imports, with the first module that pulled each one in.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import statistics
import sys
import time
from typing import Any

from bench._common import row, run_child, say, write_result

NAME = "parse_cost"
RUNS = 10
TARGET_MS = 100.0
#: The modules the brief names; every other public module of these packages is added when present.
NAMED = (
    "operators.sms",
    "operators.mnc",
    "operators.backoffice",
    "sensors.batch_status",
    "sensors.inbound",
    "notifications.smsend",
)
PACKAGES = ("operators", "sensors", "notifications", "transfers")
HEAVY = ("zeep", "pandas", "phonenumbers")
PREFIX = "airflow_provider_smsend"


def dag_modules() -> list[str]:
    """The provider modules a DAG file imports: the named ones first, then the other public ones."""
    found: list[str] = []
    for package in PACKAGES:
        try:
            module = importlib.import_module(f"{PREFIX}.{package}")
        except ImportError:
            continue
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_"):
                found.append(f"{package}.{info.name}")
    named = [m for m in NAMED if m in found]
    return [f"{PREFIX}.{m}" for m in named + sorted(set(found) - set(named))]


def _child(modules: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401 - the baseline every DAG pays

    sdk_ms = (time.perf_counter() - started) * 1000
    already = {name for name in HEAVY if name in sys.modules}
    pulled_by: dict[str, str] = {}
    per_module: dict[str, float] = {}
    errors: dict[str, str] = {}
    cpu, started = time.process_time(), time.perf_counter()
    for name in modules:
        before = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # a module being written by a colleague: report it, measure the rest
            errors[name] = f"{type(exc).__name__}: {exc}"
        per_module[name] = (time.perf_counter() - before) * 1000
        for heavy in HEAVY:
            if heavy in sys.modules and heavy not in already and heavy not in pulled_by:
                pulled_by[heavy] = name
    extra_ms = (time.perf_counter() - started) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    return {
        "sdk_ms": sdk_ms,
        "extra_ms": extra_ms,
        "extra_cpu_ms": cpu_ms,
        "per_module_ms": per_module,
        "pulled_by": pulled_by,
        "heavy_before": sorted(already),
        "errors": errors,
    }


def run() -> dict[str, Any]:
    """Run the child ``RUNS`` times (after one warm-up) and compare the median with the target."""
    modules = dag_modules()
    say(f"  modules: {', '.join(m.removeprefix(PREFIX + '.') for m in modules)}")
    arguments = ["--child", "--modules", ",".join(modules)]
    warm = run_child("bench.parse_cost", *arguments, timeout=180)
    results = [run_child("bench.parse_cost", *arguments, timeout=180) for _ in range(RUNS)]
    extra = [r["extra_ms"] for r in results]
    sdk = [r["sdk_ms"] for r in results]
    median, sdk_median = statistics.median(extra), statistics.median(sdk)
    cpu_median = statistics.median(r["extra_cpu_ms"] for r in results)
    last = results[-1]
    heavy = {name: last["pulled_by"].get(name) for name in HEAVY}
    slowest = sorted(last["per_module_ms"].items(), key=lambda kv: -kv[1])[:3]
    say(
        f"  provider imports over airflow.sdk: median {median:.0f} ms of {RUNS} runs (min {min(extra):.0f}, "
        f"max {max(extra):.0f}); process CPU median {cpu_median:.0f} ms; airflow.sdk itself {sdk_median:.0f} ms; first (untimed) run {warm['extra_ms']:.0f} ms; "
        f"{median / TARGET_MS:.2f}x the {TARGET_MS:.0f} ms budget"
    )
    say(
        "  heavy libraries imported: "
        + ", ".join(
            f"{k}: {'yes, by ' + v.removeprefix(PREFIX + '.') if v else 'no'}" for k, v in heavy.items()
        )
    )
    say(
        "  slowest (in import order): "
        + ", ".join(f"{k.removeprefix(PREFIX + '.')} {v:.0f} ms" for k, v in slowest)
    )
    if last["errors"]:
        say(f"  import errors: {last['errors']}")
    lazy = not any(heavy.values())
    rows = [
        row(
            "3. DAG parse cost",
            f"extra import time of {len(modules)} provider modules over `import airflow.sdk`",
            target=f"< {TARGET_MS:.0f} ms (median of {RUNS})",
            measured=f"{median:.0f} ms wall (min {min(extra):.0f}, max {max(extra):.0f}); CPU {cpu_median:.0f} ms",
            reference=f"airflow.sdk alone {sdk_median:.0f} ms; {median / TARGET_MS:.2f}x budget",
            passed=median < TARGET_MS and not last["errors"],
        ),
        row(
            "3. DAG parse cost",
            "zeep / pandas / phonenumbers imported at parse",
            target="none (lazy)",
            measured=", ".join(f"{k} {'YES' if v else 'no'}" for k, v in heavy.items()),
            reference="; ".join(f"{k} by {v.removeprefix(PREFIX + '.')}" for k, v in heavy.items() if v)
            or "all lazy",
            passed=lazy,
        ),
    ]
    why = (
        f"Median {median:.0f} ms of wall time, {cpu_median:.0f} ms of process CPU; slowest modules (in import order, "
        "each includes what it pulls in first): "
        + ", ".join(f"`{k.removeprefix(PREFIX + '.')}` {v:.0f} ms" for k, v in slowest)
        + ". A wall median above the "
        "budget with a CPU median below it means other processes competed for the cores."
    )
    return {
        "name": NAME,
        "rows": rows,
        "why": why,
        "figures": {
            "modules": modules,
            "extra_ms": extra,
            "extra_cpu_ms": [r["extra_cpu_ms"] for r in results],
            "sdk_ms": sdk,
            "cold_extra_ms": warm["extra_ms"],
            "per_module_ms": last["per_module_ms"],
            "pulled_by": last["pulled_by"],
            "errors": last["errors"],
        },
        "notes": [
            f"Modules: {', '.join('`' + m.removeprefix(PREFIX + '.') + '`' for m in modules)}. Each run is a new "
            "interpreter: `import airflow.sdk`, then the clock runs over importing these modules in order. Bytecode "
            f"is cached (PYTHONPYCACHEPREFIX outside the tree) by an untimed first run, which took "
            f"{warm['extra_ms']:.0f} ms. The target applies to the wall-clock median; the process CPU time of the same "
            "imports is shown beside it (on a shared machine, wall time also counts the time other processes ran).",
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--modules", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    write_result(args.result, _child(args.modules.split(",")))


if __name__ == "__main__":
    main()
