"""Sandbox capacity: requests/s the sandbox answers with no injected latency.

Reuses :mod:`airflow_provider_smsend.sandbox.loadcheck` (a minimal asyncio HTTP/1.1 load generator
on keep-alive connections) against a sandbox in its own process, so that the other benchmarks are
known not to be bound by the sandbox.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_smsend.sandbox.loadcheck import measure
from bench._common import row, sandbox, say

NAME = "sandbox_capacity"
TARGET_RPS = 2_000
CONCURRENCY = 16
DURATION = 4.0


def run() -> dict[str, Any]:
    """Measure ``/sms/credit.php`` (the simple request) and ``/sms/send.php`` requests/s."""
    rows = []
    figures: dict[str, Any] = {}
    with sandbox("--delivery-delay", "0") as box:
        measure(box.url, "/sms/credit.php", concurrency=CONCURRENCY, duration=0.5)  # warm up
        for path, label in (("/sms/credit.php", "credit.php"), ("/sms/send.php", "send.php")):
            result = measure(box.url, path, concurrency=CONCURRENCY, duration=DURATION, max_requests=100_000)
            rps = result.per_second
            figures[label] = {"requests": result.requests, "errors": result.errors, "rps": rps}
            say(
                f"  sandbox {label}: {result.requests} requests in {result.seconds:.2f} s = {rps:,.0f} req/s "
                f"({result.errors} errors, {CONCURRENCY} keep-alive connections); "
                f"{rps / TARGET_RPS:.2f}x the {TARGET_RPS:,} req/s target"
            )
            simple = path == "/sms/credit.php"
            rows.append(
                row(
                    "5. Sandbox capacity",
                    f"{label} requests/s, no latency, {CONCURRENCY} connections",
                    target=f">= {TARGET_RPS:,} req/s" if simple else "(info)",
                    measured=f"{rps:,.0f} req/s ({result.errors} errors)",
                    reference=f"{rps / TARGET_RPS:.2f}x target",
                    passed=(rps >= TARGET_RPS and result.errors == 0) if simple else None,
                )
            )
    return {
        "name": NAME,
        "rows": rows,
        "figures": figures,
        "notes": [
            "Load generator: `airflow_provider_smsend.sandbox.loadcheck.measure` (asyncio, pre-encoded "
            "requests) in the bench process; the sandbox runs in its own process. Both share the same 2 cores.",
        ],
    }
