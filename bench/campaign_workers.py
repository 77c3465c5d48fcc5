"""A campaign across workers: messages per second of the sharded campaign with one Celery worker vs two.

The sharded campaign example (dags_examples/smsend_campaign_sharded.py) in a real Airflow 3
deployment with the CeleryExecutor (the end-to-end tests' harness, tests/e2e/e2e_deployment.py:
PostgreSQL metadata, Redis broker, api-server, scheduler, dag-processor, triggerer), the audience
and the shared ledger in a PostgreSQL database. The sandbox answers after 200 ms and each shard
keeps 16 requests in flight, so one shard can send at most 16 / 0.2 s = 80 msg/s: the gateway,
not the CPU, is the limit. Each worker runs two tasks at once (Celery concurrency 2), so one
worker is limited to 160 msg/s and two to 320. Run 1 has one worker; the second is started
before run 2.

Rate = messages accepted / the span from the first to the last accepted message in the ledger
(what the gateway sees); the DAG run's wall time (task start-up, the plan and add-up tasks
included) is shown beside it.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import ROOT, row, say

NAME = "campaign_workers"
RECIPIENTS = 4_800
SHARDS = 4
CONCURRENCY = 16
LATENCY_MS = 200
SLOTS_PER_WORKER = 2  # the harness's Celery worker concurrency
DAG_ID = "smsend_campaign_sharded"
#: Two workers should come close to doubling the rate when the gateway is the limit.
TARGET_RATIO = 1.6


def _harness() -> Any:
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import e2e_deployment

    return e2e_deployment


def _span(harness: Any, deployment: Any, run_id: str) -> tuple[int, float, float]:
    """Accepted messages of the run's shards, the seconds from the first to the last, and the
    median rate of one shard while it sends (its messages over its own span)."""
    with harness.pg_connect(deployment.campaign_db) as conn:
        rows = conn.execute(
            "SELECT job_key, updated_at FROM smsend_send_ledger WHERE job_key LIKE %s AND state = 'accepted'",
            (f"{DAG_ID}/send_shard/{run_id}/%",),
        ).fetchall()
    by_shard: dict[str, list[dt.datetime]] = {}
    for key, value in rows:
        by_shard.setdefault(key, []).append(dt.datetime.fromisoformat(value))
    moments = sorted(m for shard in by_shard.values() for m in shard)
    if not moments:
        return 0, 0.0, 0.0
    shard_rates = [
        len(shard) / (max(shard) - min(shard)).total_seconds()
        for shard in by_shard.values()
        if max(shard) > min(shard)
    ]
    return len(moments), (moments[-1] - moments[0]).total_seconds(), statistics.median(shard_rates)


def _one_run(harness: Any, deployment: Any, workers: int) -> dict[str, Any]:
    assert deployment.sandbox is not None
    deployment.sandbox.admin("reset", {})
    deployment.sandbox.admin("accounts/1001/credit", {"credit": "100000"})
    deployment.sandbox.admin("faults", {"latency_ms": LATENCY_MS})
    conf = {"warehouse_conn_id": "campaign_db", "ledger_conn_id": "campaign_db", "shards": SHARDS}
    conf["concurrency"] = CONCURRENCY
    started = time.monotonic()
    run_id, state, tasks = deployment.run_dag(DAG_ID, timeout=600, conf=conf)
    wall = time.monotonic() - started
    if state != "success":
        raise RuntimeError(f"the sharded campaign with {workers} worker(s) ended {state!r}: {tasks}")
    accepted, span, shard_rate = _span(harness, deployment, run_id)
    if accepted != RECIPIENTS or set(deployment.sandbox.sms_counts().values()) != {1}:
        raise RuntimeError(f"{accepted} of {RECIPIENTS} accepted, or a number texted twice")
    rate = accepted / span if span else 0.0
    limit = workers * SLOTS_PER_WORKER * CONCURRENCY / (LATENCY_MS / 1000)
    hosts = deployment.query(
        "SELECT DISTINCT hostname FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = 'send_shard'",
        DAG_ID,
        run_id,
    )
    say(
        f"  {workers} worker(s): {accepted:,} msgs in {span:.1f} s = {rate:.0f} msg/s ({rate / limit:.0%} of "
        f"{limit:.0f}); one shard sending: {shard_rate:.0f} msg/s (limit {CONCURRENCY / (LATENCY_MS / 1000):.0f}); "
        f"DAG run {wall:.0f} s; shards ran on {len(hosts)} host(s)"
    )
    return {
        "rate": rate,
        "span": span,
        "wall": wall,
        "limit": limit,
        "hosts": len(hosts),
        "shard_rate": shard_rate,
    }


def run() -> dict[str, Any]:
    """Boot the deployment with one worker, run the campaign, add the second worker, run it again."""
    harness = _harness()
    try:
        return _measure(harness)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the harness reports with pytest.fail/skip (BaseException)
        if isinstance(exc, Exception):
            raise
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


def _measure(harness: Any) -> dict[str, Any]:
    harness.require_services("postgres", "redis")
    work = Path(tempfile.mkdtemp(prefix="smsend-bench-workers-"))
    template = f"airflow_e2e_{os.getpid()}_template"
    harness.create_database(template)
    deployment = None
    try:
        harness.migrate(work / "migrate", template)
        deployment = harness.Deployment(
            work / "deployment", template_db=template, executor="CeleryExecutor", name="bench"
        )
        deployment.start(workers=1)
        deployment.wait_for("worker1 to be ready", lambda: deployment.worker_ready("worker1"), 180)
        deployment.wait_for("the api-server", lambda: deployment.api("monitor/health"), 120)
        deployment.seed_audience((i, f"+39348{i:06d}5", f"Cliente {i}") for i in range(1, RECIPIENTS + 1))
        one = _one_run(harness, deployment, workers=1)
        deployment.launch_worker("worker2")
        deployment.wait_for("worker2 to be ready", lambda: deployment.worker_ready("worker2"), 180)
        two = _one_run(harness, deployment, workers=2)
    finally:
        if deployment is not None:
            deployment.stop()
        harness.drop_database(template)
    ratio = two["rate"] / one["rate"] if one["rate"] else 0.0
    setup = (
        f"{RECIPIENTS:,} msgs, {SHARDS} shards x c={CONCURRENCY}, {LATENCY_MS} ms latency, "
        f"{SLOTS_PER_WORKER} tasks per worker"
    )
    rows = [
        row(
            NAME,
            f"sharded campaign, 1 Celery worker ({setup})",
            target="(info)",
            measured=f"{one['rate']:.0f} msg/s (DAG run {one['wall']:.0f} s; one shard {one['shard_rate']:.0f} msg/s)",
            reference=f"{one['rate'] / one['limit']:.0%} of {one['limit']:.0f} msg/s",
        ),
        row(
            NAME,
            "sharded campaign, 2 Celery workers (same campaign)",
            target="(info)",
            measured=(
                f"{two['rate']:.0f} msg/s (DAG run {two['wall']:.0f} s; one shard {two['shard_rate']:.0f} msg/s; "
                f"shards on {two['hosts']} hosts)"
            ),
            reference=f"{two['rate'] / two['limit']:.0%} of {two['limit']:.0f} msg/s",
        ),
        row(
            NAME,
            "2 workers vs 1, gateway-bound",
            target=f">= {TARGET_RATIO}x",
            measured=f"{ratio:.2f}x",
            reference=f"{two['rate']:.0f} vs {one['rate']:.0f} msg/s",
            passed=ratio >= TARGET_RATIO,
        ),
    ]
    return {
        "name": NAME,
        "rows": rows,
        "notes": [
            "The sharded example on a CeleryExecutor deployment of the e2e harness (PostgreSQL metadata, "
            "Redis broker); the audience and the one shared ledger in PostgreSQL; the sandbox in its own "
            f"process with {LATENCY_MS} ms latency. Rate = accepted messages / span from the first to the "
            "last accepted message in the ledger; limit = workers x 2 tasks x concurrency / latency; one "
            "shard = the median over shards of a shard's messages / its own first-to-last span (limit "
            "concurrency / latency). Run 1 with one worker (the four shards in two waves, so its span "
            "includes the second wave's start-up), then a second worker is started for run 2.",
        ],
        "why": "Two workers give twice the slots; the rest is task start-up (a shard's process starts, "
        "parses the DAG, reads its recipients) and the CPU both workers share on this machine.",
        "figures": {"one": one, "two": two, "ratio": ratio},
    }


if __name__ == "__main__":
    result = run()
    for line in result["rows"]:
        say(f"{line['metric']}: {line['measured']} ({line['reference']})")
