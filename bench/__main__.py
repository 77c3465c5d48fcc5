"""``python -m bench``: run every benchmark and rewrite ``docs/benchmarks.md``.

``python -m bench --only bulk_send`` runs one (or a comma separated list) and prints its figures
without touching the document unless ``--write`` is given. A benchmark that crashes is reported as
an error row and the others still run; the exit code is 1 then, else 0 (a FAIL is a result).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bench import report
from bench._common import ROOT, row, say

#: In run order: the sandbox's capacity first, so the other figures are known not to be sandbox-bound.
BENCHMARKS = (
    "sandbox_capacity",
    "bulk_send",
    "report_load",
    "parse_cost",
    "trigger_scale",
    "campaign_loop",
    "campaign_workers",
)
DOC = ROOT / "docs" / "benchmarks.md"


def _versions() -> dict[str, str]:
    names = (
        "airflow-provider-smsend",
        "apache-airflow",
        "requests",
        "httpx",
        "psycopg",
        "pandas",
        "SQLAlchemy",
    )
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def run_one(name: str) -> dict[str, Any]:
    """Run one benchmark module's ``run()``; a crash becomes an error row."""
    say(f"==> {name}")
    started = time.perf_counter()
    try:
        result = importlib.import_module(f"bench.{name}").run()
    except Exception as exc:
        traceback.print_exc()
        result = {
            "name": name,
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "notes": [],
            "rows": [
                row(
                    name,
                    "benchmark run",
                    target="completes",
                    measured="crashed",
                    reference=type(exc).__name__,
                    passed=False,
                ),
            ],
        }
    result["seconds"] = time.perf_counter() - started
    for r in result["rows"]:
        verdict = {True: "PASS", False: "FAIL", None: "info"}[r["passed"]]
        say(f"  [{verdict}] {r['metric']}: {r['measured']} (target {r['target']}; {r['reference']})")
    say(f"  ({name} took {result['seconds']:.0f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"benchmarks to run (comma separated, repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md even with --only")
    args = parser.parse_args(argv)
    names = [n.strip() for part in args.only for n in part.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    started_at = dt.datetime.now(dt.UTC)
    load_start = report.load_average()
    started = time.perf_counter()
    results = [run_one(name) for name in names]
    seconds = time.perf_counter() - started
    say(f"==> all done in {seconds / 60:.1f} min")
    if not args.only or args.write:
        text = report.render(
            results,
            started=started_at,
            seconds=seconds,
            load_start=load_start,
            load_end=report.load_average(),
            versions=_versions(),
        )
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text)
        say(f"==> wrote {DOC.relative_to(ROOT)}")
    failed = [r["metric"] for res in results for r in res["rows"] if r["passed"] is False]
    if failed:
        say(f"==> {len(failed)} target(s) not met: " + "; ".join(failed))
    return 1 if any(res.get("error") for res in results) else 0


if __name__ == "__main__":
    sys.exit(main())
