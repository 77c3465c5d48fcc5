"""Campaign loop: 10,000 messages sent, the delivery wait polled, the 10,000 reports loaded into PostgreSQL.

The shape of a real campaign DAG, against one sandbox process with ``--latency-ms 50``:

* send: :class:`~airflow_provider_smsend.client.bulk.BulkSender` at ``CONCURRENCY``, one request id
  per message (``return_id=1``), in two waves ``WAVE_GAP_S`` apart on the sandbox clock (advanced,
  not waited), so that the first poll finds the first wave delivered and the second still pending;
* wait: the sensor's batch-status poll in a child process: every poll reads the notify report of each
  request id still pending, ``CONCURRENCY`` at a time, and drops the ids whose rows are final; between
  polls the sandbox clock is advanced by the poke interval (the wait is simulated, not slept): it is
  :class:`~airflow_provider_smsend.sensors.batch_status.SmSendBatchStatusSensor` ``(concurrency=32)``
  ``.poke()``, which keeps the reports already final and reads only the others;
* load: :class:`~airflow_provider_smsend.transfers.batch_status_to_sql.SmSendBatchStatusToSqlOperator`
  ``(request_ids=<10,000 ids>, concurrency=32).execute()`` in a child process, into PostgreSQL (the
  compact layout), twice, each into a new table; the better run is reported.

Requests are counted by the sandbox (``/_sandbox/stats``, reset before each poll and each load).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    DEMO_PASS,
    DEMO_USER,
    child_env,
    current_rss_mb,
    numbers,
    peak_rss_mb,
    process_cpu_seconds,
    row,
    run_child,
    sandbox,
    say,
    write_result,
)

NAME = "campaign_loop"
BENCHMARK = "6. Campaign loop"
LATENCY_MS = 50.0
CONCURRENCY = 32
WAVES = (6_800, 3_200)
#: Seconds until a message is sent; delivered (notify final) after twice that, on the sandbox clock.
DELIVERY_DELAY_S = 60.0
#: The sandbox clock moves this much between the waves: the first is delivered before the first poll.
WAVE_GAP_S = 2 * DELIVERY_DELAY_S
#: The sensor's poke interval: the sandbox clock moves this much between polls.
POKE_INTERVAL_S = 2 * DELIVERY_DELAY_S
MAX_POLLS = 6
LOAD_RUNS = 2
TARGET_OF_LIMIT = 0.80
BATCH_STATUS = "/sms/batch-status.php"
PG = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}


# ------------------------------------------------------------------------------------- children


def _child_poll(args: argparse.Namespace) -> dict[str, Any]:
    """The sensor's poke() until no request id is pending; per poll: requests the sandbox got, ids left
    pending (the requests of the next poll), seconds."""
    from airflow_provider_smsend.sandbox.testing import AdminClient
    from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor

    admin = AdminClient(args.url, timeout=60)
    ids: list[str] = json.loads(Path(args.ids).read_text())
    polls: list[dict[str, Any]] = []
    sensor = SmSendBatchStatusSensor(
        task_id="wait_delivery",
        request_ids=ids,
        report_type="notify",
        success_rule="all_terminal",
        concurrency=CONCURRENCY,
        poke_interval=POKE_INTERVAL_S,
    )
    sensor.prepare({})  # type: ignore[arg-type]
    for _ in range(MAX_POLLS):
        admin.reset_stats()
        started = time.perf_counter()
        done = sensor.poke({})  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        requests = int(admin.stats()["requests"].get(BATCH_STATUS, 0))
        if polls:
            polls[-1]["pending"] = requests  # what the sensor still polled for
        finished = bool(done if isinstance(done, bool) else done.is_done)
        polls.append({"requests": requests, "pending": 0 if finished else None, "seconds": seconds})
        if finished:
            break
        admin.advance(POKE_INTERVAL_S)
    return {"polls": polls}


def _child_load(args: argparse.Namespace) -> dict[str, Any]:
    """The operator's execute() over every request id; wall time, CPU, RSS before the load and at peak."""
    import importlib

    from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

    ids: list[str] = json.loads(Path(args.ids).read_text())
    operator = SmSendBatchStatusToSqlOperator(
        task_id="load_delivery_status",
        request_ids=ids,
        report_type="notify",
        table=args.table,
        conn_id="bench_sql",
        concurrency=CONCURRENCY,
    )
    operator.dialect  # noqa: B018 - resolve the SQL connection before the clock starts
    operator.hook.client  # noqa: B018 - and the smSend one (no I/O)
    before_imports = current_rss_mb()
    for module in ("pandas", "pyarrow", "pyarrow.csv", "pyarrow.compute", "adbc_driver_postgresql.dbapi"):
        importlib.import_module(module)  # what the load imports lazily, before the RSS baseline
    baseline = current_rss_mb()
    cpu, started = time.process_time(), time.perf_counter()
    result = operator.execute({"run_id": "bench"})
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "rows": result["rows"],
        "requests": result["requests"],
        "method": result["method"],
        "seconds": seconds,
        "loader_seconds": result["seconds"],
        "cpu_seconds": cpu,
        "rss_before_imports_mb": before_imports,
        "rss_before_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
    }


CHILDREN = {"poll": _child_poll, "load": _child_load}


def child_main(argv: list[str] | None = None) -> None:
    """Entry point of a child process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=sorted(CHILDREN), required=True)
    parser.add_argument("--url", required=True, help="the sandbox")
    parser.add_argument("--ids", required=True, help="a JSON file of the request ids")
    parser.add_argument("--table", default="")
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    write_result(args.result, CHILDREN[args.child](args))


# ------------------------------------------------------------------------------------- parent


def _send(url: str, count: int, prefix: str, job_key: str) -> tuple[list[str], float]:
    """Send ``count`` messages with BulkSender; their request ids (one per message) and the wall time."""
    from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender
    from airflow_provider_smsend.client.http import SmSendClient
    from airflow_provider_smsend.client.ledger import MemoryLedger

    messages = [BulkMessage(n, "Campaign message, hello") for n in numbers(count, prefix=prefix)]
    with SmSendClient(username=DEMO_USER, password=DEMO_PASS, base_url=url, default_sender="BENCH") as client:
        sender = BulkSender(client, ledger=MemoryLedger(), job_key=job_key, concurrency=CONCURRENCY)
        started = time.perf_counter()
        result = sender.run(messages)
        seconds = time.perf_counter() - started
    ids = [o.request_id for o in result.outcomes if o.request_id]
    if result.totals["accepted"] != count or len(set(ids)) != count:
        raise RuntimeError(
            f"send: {result.totals} for {count} messages, {len(set(ids))} distinct request ids"
        )
    return ids, seconds


def _table_counts(table: str) -> tuple[int, int]:
    """Rows and distinct request ids in the view."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test") as pg:
        found = pg.execute(f'SELECT COUNT(*), COUNT(DISTINCT request_id) FROM "{table}"').fetchone()
        return (int(found[0]), int(found[1])) if found else (0, 0)


def _drop(tables: list[str]) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as pg:
        for table in tables:
            pg.execute(f'DROP VIEW IF EXISTS "{table}"')
            pg.execute(f'DROP TABLE IF EXISTS "{table}_rows", "{table}_loads"')


def run() -> dict[str, Any]:
    """Send, wait, load; return the result rows."""
    total = sum(WAVES)
    limit = CONCURRENCY / (LATENCY_MS / 1000)
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    tables: list[str] = []
    figures: dict[str, Any] = {"concurrency": CONCURRENCY, "latency_ms": LATENCY_MS, "limit_rate": limit}
    with (
        tempfile.TemporaryDirectory(prefix="smsend-bench-campaign-") as tmp,
        sandbox("--latency-ms", str(LATENCY_MS), "--delivery-delay", str(DELIVERY_DELAY_S)) as box,
    ):
        ids: list[str] = []
        sends = []
        for wave, (count, prefix) in enumerate(zip(WAVES, ("+39333", "+39347"), strict=True)):
            if wave:
                box.admin.advance(WAVE_GAP_S)
            wave_ids, seconds = _send(box.url, count, prefix, f"campaign-{tag}-{wave}")
            ids += wave_ids
            sends.append({"messages": count, "seconds": seconds, "rate": count / seconds})
        figures["send"] = sends
        say(
            f"  sent {total:,} messages in {len(WAVES)} waves ("
            + ", ".join(f"{s['messages']:,} at {s['rate']:,.0f} msg/s" for s in sends)
            + f"), {len(set(ids)):,} request ids; waves {WAVE_GAP_S:g} s apart on the sandbox clock"
        )
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(ids))
        env = child_env(AIRFLOW_CONN_SMSEND_DEFAULT=box.connection_uri, AIRFLOW_CONN_BENCH_SQL=json.dumps(PG))

        poll = run_child(
            "bench.campaign_loop",
            "--child",
            "poll",
            "--url",
            box.url,
            "--ids",
            str(ids_file),
            env=env,
            timeout=600,
        )
        polls = poll["polls"]
        figures["polls"] = poll
        say(
            f"  delivery wait (SmSendBatchStatusSensor.poke(), c={CONCURRENCY}): {len(polls)} polls; requests per poll "
            + ", ".join(f"{p['requests']:,}" for p in polls)
            + "; pending after each "
            + ", ".join("?" if p["pending"] is None else f"{p['pending']:,}" for p in polls)
            + "; seconds "
            + ", ".join(f"{p['seconds']:.1f}" for p in polls)
        )

        loads = []
        try:
            for attempt in range(LOAD_RUNS):
                table = f"bench_smsend_campaign_{tag}_{attempt}"
                tables.append(table)
                box.admin.reset_stats()
                cpu = process_cpu_seconds(box.process.pid if box.process else None)
                result = run_child(
                    "bench.campaign_loop",
                    *("--child", "load", "--url", box.url, "--ids", str(ids_file), "--table", table),
                    env=env,
                    timeout=600,
                )
                cpu_after = process_cpu_seconds(box.process.pid if box.process else None)
                result["sandbox_requests"] = int(box.requests(BATCH_STATUS))
                result["sandbox_cpu_seconds"] = None if cpu is None or cpu_after is None else cpu_after - cpu
                result["table_rows"], result["table_request_ids"] = _table_counts(table)
                result["rate"] = result["rows"] / result["seconds"]
                loads.append(result)
                say(
                    f"  load {attempt + 1}: {result['rows']:,} rows of {result['requests']:,} request ids in "
                    f"{result['seconds']:.2f} s = {result['rate']:,.0f} rows/s ({result['rate'] / limit:.0%} of "
                    f"{limit:,.0f}); sandbox got {result['sandbox_requests']:,} batch-status requests; table "
                    f"{result['table_rows']:,} rows of {result['table_request_ids']:,} request ids; client CPU "
                    f"{result['cpu_seconds']:.1f} s; peak RSS {result['peak_rss_mb']:.0f} MB "
                    f"({result['rss_before_mb']:.0f} MB before the load)"
                )
        finally:
            try:
                _drop(tables)
            except Exception as exc:  # report, the figures stand
                say(f"  warning: could not drop {tables}: {exc}")
    figures["loads"] = loads

    load = max(loads, key=lambda r: r["rate"])
    exact = all(r["sandbox_requests"] == total == r["table_request_ids"] == r["table_rows"] for r in loads)
    requests_seq = [p["requests"] for p in polls]
    pending_seq = [p["pending"] for p in polls]
    # Each poll asks for exactly the ids the previous one left pending, and the count falls to 0.
    expected_seq = [total, *[p for p in pending_seq[:-1] if p is not None]]
    falling = (
        len(polls) >= 2
        and requests_seq == expected_seq
        and pending_seq[-1] == 0
        and all(a > b for a, b in zip(requests_seq, requests_seq[1:], strict=False))
    )
    growth = load["peak_rss_mb"] - load["rss_before_mb"]
    cpu_ms = load["cpu_seconds"] / load["requests"] * 1000
    box_ms = load["sandbox_cpu_seconds"] / load["requests"] * 1000 if load["sandbox_cpu_seconds"] else None
    first_poll_rate = polls[0]["requests"] / polls[0]["seconds"]
    rows = [
        row(
            BENCHMARK,
            f"load of {total:,} request ids' notify reports into PostgreSQL, operator c={CONCURRENCY}, "
            f"{LATENCY_MS:g} ms latency",
            target=f">= {TARGET_OF_LIMIT:.0%} of limit ({limit:,.0f} rows/s)",
            measured=f"{load['rate']:,.0f} rows/s ({load['seconds']:.1f} s, {load['table_rows']:,} rows; client "
            f"CPU {cpu_ms:.2f} ms/request)",
            reference=f"{load['rate'] / limit:.0%} of {CONCURRENCY}/{LATENCY_MS / 1000:g} s (runs: "
            + ", ".join(f"{r['rate']:,.0f}" for r in loads)
            + ")",
            passed=exact and load["rate"] >= TARGET_OF_LIMIT * limit,
        ),
        row(
            BENCHMARK,
            f"delivery wait: batch-status requests per poll (sensor poke(), c={CONCURRENCY})",
            target="= ids still pending, falling to 0 in >= 2 polls",
            measured=", ".join(f"{n:,}" for n in requests_seq)
            + " requests; pending after: "
            + ", ".join("?" if p is None else f"{p:,}" for p in pending_seq),
            reference=f"first poll {first_poll_rate:,.0f} req/s ({polls[0]['seconds']:.1f} s)",
            passed=falling,
        ),
        row(
            BENCHMARK,
            "batch-status requests per request id per load (sandbox count)",
            target="exactly 1",
            measured=" / ".join(f"{r['sandbox_requests']:,} requests for {total:,} ids" for r in loads),
            reference=f"{load['table_request_ids']:,} distinct request ids loaded",
            passed=exact,
        ),
        row(
            BENCHMARK,
            f"peak RSS of the load process ({total:,} ids)",
            target="(info)",
            measured=f"{load['peak_rss_mb']:.0f} MB (+{growth:.0f} MB over the start of the load)",
            reference=f"{load['rss_before_mb']:.0f} MB before the load, of which "
            f"{load['rss_before_mb'] - load['rss_before_imports_mb']:.0f} MB its lazy imports",
        ),
    ]
    round_trip_ms = CONCURRENCY / load["rate"] * 1000
    why = (
        f"Each of the {CONCURRENCY} fetch workers completed a report every {round_trip_ms:.1f} ms on average "
        f"against the {LATENCY_MS:g} ms injected. The load's process used {cpu_ms:.2f} ms of CPU per request "
        f"({load['cpu_seconds'] / load['seconds']:.2f} of a core: requests' per-call preparation, the pool, "
        "the parse and the ingest, under one GIL)"
        + (f" and the sandbox {box_ms:.2f} ms" if box_ms is not None else "")
        + f"; the first poll of the same ids (fetch + parse, no SQL) ran at {first_poll_rate:,.0f} req/s. Both "
        "processes share 2 cores with whatever else ran (load average in the header)."
    )
    return {
        "name": NAME,
        "rows": rows,
        "figures": figures,
        "why": why,
        "notes": [
            f"One sandbox process, `--latency-ms {LATENCY_MS:g} --delivery-delay {DELIVERY_DELAY_S:g}` (notify final "
            f"{2 * DELIVERY_DELAY_S:g} s after the send, on the sandbox clock). {total:,} deliverable recipients "
            f"sent by `BulkSender` (c={CONCURRENCY}, MemoryLedger, `return_id=1`: one request id per message) in "
            f"two waves of {WAVES[0]:,} and {WAVES[1]:,}, with the sandbox clock advanced {WAVE_GAP_S:g} s between "
            "them, so the first poll finds the first wave delivered and the second pending.",
            "Delivery wait, in a child process: each poll reads the notify report of every request id still "
            f"pending, {CONCURRENCY} at a time, and keeps those whose rows are final without reading them again "
            f'(`SmSendBatchStatusSensor(report_type="notify", success_rule="all_terminal", '
            f"concurrency={CONCURRENCY}).poke()`); between polls the sandbox clock is advanced by "
            f"the poke interval ({POKE_INTERVAL_S:g} s) instead of sleeping. Requests per poll are the sandbox's "
            "count (`/_sandbox/stats`, reset before each poll).",
            f'Load: `SmSendBatchStatusToSqlOperator(request_ids=<{total:,} ids>, report_type="notify", '
            f"concurrency={CONCURRENCY}).execute()` in a child process into PostgreSQL (compact layout, a new "
            f"table each run), {LOAD_RUNS} runs, the better reported; every run must make exactly one "
            "batch-status request per id (sandbox count = ids = distinct request ids in the table). rows/s = "
            f"rows / wall time of execute(); limit = {CONCURRENCY} / {LATENCY_MS / 1000:g} s (one row per id). "
            "Peak RSS: VmHWM of that child; growth over its RSS just before execute(), after the modules the load "
            "imports lazily.",
        ],
    }


if __name__ == "__main__":
    child_main()
