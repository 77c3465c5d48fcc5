"""Report load: a 1,000,000-row notify report into PostgreSQL through the provider's transfer path.

The provider path is the real operator, end to end:
:class:`~airflow_provider_smsend.transfers.batch_status_to_sql.SmSendBatchStatusToSqlOperator`
``.execute()`` with its connections resolved by Airflow (``AIRFLOW_CONN_*`` variables): the
SmSendHook's client streams the CSV report over HTTP from a stand-in gateway process (the sandbox
keeps reports small), the report is parsed line by line, shaped into 10-column rows and written by
:class:`~airflow_provider_smsend.client.sqlload.TableLoader` through the common-sql hook's DB-API
connection (PostgreSQL: ``COPY`` with psycopg 3) in one transaction.

References, each in its own process, on the same CSV:

* physical: ``COPY table (id, dest, status, status_text) FROM STDIN (FORMAT csv, HEADER)`` of the
  file's bytes through psycopg 3 (what the database can ingest at best);
* naive: pandas ``DataFrame.to_sql`` with its defaults through the hook's SQLAlchemy engine, on a
  DataFrame of the same 10 columns (the CSV read and the extra columns are not timed).

Each load runs in a child process that reports its peak RSS (VmHWM). Also: 100,000 rows into
MariaDB and SQLite, provider vs ``to_sql``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    child_env,
    current_rss_mb,
    peak_rss_mb,
    row,
    run_child,
    say,
    start_server,
    stop_process,
    write_result,
)

NAME = "report_load"
ROWS = 1_000_000
SMALL_ROWS = 100_000
TO_SQL_PG_ROWS = 100_000
TARGET_OF_COPY = 0.50
TARGET_VS_TO_SQL = 10.0
TARGET_RSS_MB = 300.0
PG = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
MYSQL = {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "password": "", "schema": "test"}
REQUEST_ID = "HTTPBENCH"
STATUSES = [(200, "Delivered")] * 17 + [(100, "Waiting"), (300, "Unknown subscriber"), (302, "Temporary failure")]


# ------------------------------------------------------------------------------------- data


def generate_csv(path: Path, rows: int, *, seed: int = 9) -> None:
    """Write a notify report: ``id,dest,status,status_text`` header and ``rows`` lines."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("id,dest,status,status_text\n")
        block: list[str] = []
        for i in range(rows):
            status, text = STATUSES[rng.randrange(len(STATUSES))]
            block.append(f"{9_000_000 + i},+3933{rng.randrange(10**8):08d},{status},{text}\n")
            if len(block) == 10_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))


def _conn_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec)


# ------------------------------------------------------------------------------------- children


def _child_provider(args: argparse.Namespace) -> dict[str, Any]:
    """The operator's execute(), connections from the environment; peak RSS of this process."""
    from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

    operator = SmSendBatchStatusToSqlOperator(
        task_id="load_report", request_ids=args.request_id, report_type="notify", table=args.table,
        conn_id="bench_sql",
    )
    operator.dialect  # noqa: B018 - resolve the SQL connection before the clock starts
    baseline = current_rss_mb()
    started = time.perf_counter()
    result = operator.execute({"run_id": "bench"})
    seconds = time.perf_counter() - started
    return {"rows": result["rows"], "seconds": seconds, "method": result["method"],
            "loader_seconds": result["seconds"], "rss_before_mb": baseline, "peak_rss_mb": peak_rss_mb()}


def _frame(csv_path: str, rows: int) -> Any:
    import datetime as dt

    import pandas as pd

    frame = pd.read_csv(csv_path, nrows=rows, dtype={"dest": "string", "status_text": "string"})
    frame.insert(0, "report_type", "notify")
    frame.insert(0, "request_id", REQUEST_ID)
    frame["status_class"] = frame["status"].floordiv(100).map({1: "pending", 2: "success", 3: "failure"})
    frame["netcode"] = None
    frame["loaded_at"] = pd.Timestamp(dt.datetime.now(dt.UTC))
    frame["dag_run_id"] = "bench"
    return frame


def _child_to_sql(args: argparse.Namespace) -> dict[str, Any]:
    """pandas ``to_sql`` defaults through the hook's SQLAlchemy engine (only to_sql is timed)."""
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection("bench_sql").get_hook()
    engine = hook.get_sqlalchemy_engine()
    frame = _frame(args.csv, args.rows)
    started = time.perf_counter()
    frame.to_sql(args.table, engine)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": len(frame), "seconds": seconds, "driver": engine.url.drivername, "peak_rss_mb": peak_rss_mb()}


def _child_copy(args: argparse.Namespace) -> dict[str, Any]:
    """The physical reference: the CSV's bytes through psycopg 3 ``COPY ... FROM STDIN``."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test") as conn:
        conn.execute(f'CREATE TABLE "{args.table}" (id BIGINT NOT NULL, dest VARCHAR(32) NOT NULL, '
                     f"status INTEGER NOT NULL, status_text VARCHAR(255))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, open(args.csv, "rb") as source:
            with cur.copy(f'COPY "{args.table}" (id, dest, status, status_text) FROM STDIN '
                          f"(FORMAT csv, HEADER true)") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            rows = cur.rowcount
        conn.commit()
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def _child_stages(args: argparse.Namespace) -> dict[str, Any]:
    """Where the provider's time per row goes: cumulative stages in one process, best of 3, µs/row.

    The last stage writes with the loader's own COPY writer into a TEMP table of the session, in a
    transaction rolled back at the end (nothing is left in the database).
    """
    import datetime as dt

    import psycopg

    from airflow_provider_smsend.client.reports import iter_batch_status
    from airflow_provider_smsend.client.sqlload import TableLoader
    from airflow_provider_smsend.client.tables import (
        BATCH_STATUS_TABLE,
        batch_status_records,
        chunked,
        dialect_for,
    )
    from airflow_provider_smsend.hooks.smsend import SmSendHook

    client = SmSendHook().client
    adapters = dialect_for("postgres").adapters(BATCH_STATUS_TABLE)
    now = dt.datetime.now(dt.UTC)

    def stream(lines: Any) -> int:
        return sum(1 for _ in lines) - 1  # minus the header

    def parse(lines: Any) -> int:
        return sum(1 for _ in iter_batch_status(lines, "notify"))

    def shape(lines: Any) -> int:
        records = batch_status_records(iter_batch_status(lines, "notify"), request_id=args.request_id,
                                       report_type="notify", loaded_at=now, dag_run_id="bench")
        # What TableLoader.load does to every record before writing it.
        return sum(1 for record in records for _ in [tuple(f(v) for f, v in zip(adapters, record, strict=True))])

    dialect = dialect_for("postgres")
    pg = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    pg.execute(dialect.create_table_sql("bench_stage_tmp", BATCH_STATUS_TABLE).replace(
        "CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS"))
    cursor = pg.cursor()
    loader = TableLoader(pg, dialect, "bench_stage_tmp", BATCH_STATUS_TABLE)
    _, write = loader._writer(cursor, "append")  # the loader's COPY writer (psycopg 3 write_row)

    def copy(lines: Any) -> int:
        records = batch_status_records(iter_batch_status(lines, "notify"), request_id=args.request_id,
                                       report_type="notify", loaded_at=now, dag_run_id="bench")
        count = 0
        for chunk in chunked(records, 50_000):
            write([tuple(f(v) for f, v in zip(adapters, record, strict=True)) for record in chunk])
            count += len(chunk)
        return count

    stages: dict[str, float] = {}
    for name, consume in (("http_stream_decode", stream), ("parse", parse), ("shape_adapt", shape),
                          ("copy", copy)):
        for _ in range(3):  # best of three: the machine is shared
            started = time.perf_counter()
            with client.stream_batch_status(args.request_id, "notify") as lines:
                count = consume(lines)
            elapsed = (time.perf_counter() - started) / count * 1e6
            stages[name] = min(stages.get(name, elapsed), elapsed)
    pg.rollback()
    pg.close()
    return {"rows": count, "seconds": 1.0, "us_per_row_cumulative": stages}


CHILDREN = {"provider": _child_provider, "to_sql": _child_to_sql, "copy": _child_copy, "stages": _child_stages}


def child_main(argv: list[str] | None = None) -> None:
    """Entry point of a child load process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=sorted(CHILDREN), required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--csv", default="")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--request-id", default=REQUEST_ID)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    write_result(args.result, CHILDREN[args.child](args))


# ------------------------------------------------------------------------------------- parent


def _drop_tables(db: str, tables: list[str], sqlite_path: Path | None = None) -> None:
    """Drop the tables this benchmark created (and only those)."""
    if not tables:
        return
    if db == "postgres":
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True) as conn:
            for table in tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    elif db == "mysql":
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db="test")
        try:
            cur = conn.cursor()
            for table in tables:
                cur.execute(f"DROP TABLE IF EXISTS `{table}`")
            conn.commit()
        finally:
            conn.close()
    elif sqlite_path is not None and sqlite_path.exists():
        with sqlite3.connect(sqlite_path) as lite:
            for table in tables:
                lite.execute(f'DROP TABLE IF EXISTS "{table}"')


def _count(db: str, table: str, sqlite_path: Path | None = None) -> int:
    if db == "postgres":
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test") as pg:
            found = pg.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
            return int(found[0]) if found else 0
    if db == "mysql":
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db="test")
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            return int(cur.fetchone()[0])
        finally:
            conn.close()
    assert sqlite_path is not None
    with sqlite3.connect(sqlite_path) as lite:
        return int(lite.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def run() -> dict[str, Any]:
    """Generate the reports, run every load in a child process, compare, clean up."""
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    created: dict[str, list[str]] = {"postgres": [], "mysql": [], "sqlite": []}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="smsend-bench-report-") as tmp:
        reports = Path(tmp)
        big, small = reports / "big.csv", reports / "small.csv"
        started = time.perf_counter()
        generate_csv(big, ROWS)
        generate_csv(small, SMALL_ROWS, seed=10)
        say(f"  generated {ROWS:,}-row ({big.stat().st_size / 1e6:.0f} MB) and {SMALL_ROWS:,}-row notify "
            f"reports in {time.perf_counter() - started:.1f} s")
        sqlite_path = reports / "bench.db"
        server, url = start_server(["-m", "bench._report_server", "--dir", str(reports)])
        host_port = url.split("://", 1)[1]
        smsend_uri = f"smsend://demo:demo-pass@{host_port}/?scheme=http"
        databases: dict[str, dict[str, Any]] = {"postgres": PG, "mysql": MYSQL, "sqlite": {"conn_type": "sqlite", "host": str(sqlite_path)}}

        def load(kind: str, db: str, *, request_id: str = "big", csv: Path = big, rows: int = 0) -> dict[str, Any]:
            table = f"bench_smsend_{kind}_{tag}"
            created[db].append(table)
            env = child_env(AIRFLOW_CONN_BENCH_SQL=_conn_json(databases[db]), AIRFLOW_CONN_SMSEND_DEFAULT=smsend_uri)
            result = run_child("bench.report_load", "--child", kind, "--table", table, "--csv", str(csv),
                               "--rows", str(rows), "--request-id", request_id, env=env, timeout=420)
            result["table_rows"] = _count(db, table, sqlite_path)
            result["rate"] = result["rows"] / result["seconds"]
            return result

        try:
            copy = load("copy", "postgres")
            say(f"  PostgreSQL raw COPY (psycopg, CSV bytes): {copy['rows']:,} rows in {copy['seconds']:.2f} s = "
                f"{copy['rate']:,.0f} rows/s")
            provider = load("provider", "postgres")
            say(f"  PostgreSQL provider transfer ({provider['method']}): {provider['rows']:,} rows in "
                f"{provider['seconds']:.2f} s = {provider['rate']:,.0f} rows/s = {provider['rate'] / copy['rate']:.0%} "
                f"of raw COPY; peak RSS {provider['peak_rss_mb']:.0f} MB (before the load "
                f"{provider['rss_before_mb']:.0f} MB)")
            to_sql = load("to_sql", "postgres", csv=big, rows=TO_SQL_PG_ROWS)
            say(f"  PostgreSQL pandas to_sql ({to_sql['driver']}, {TO_SQL_PG_ROWS:,} rows, extrapolated): "
                f"{to_sql['seconds']:.2f} s = {to_sql['rate']:,.0f} rows/s -> provider is "
                f"{provider['rate'] / to_sql['rate']:.1f}x")
            stages = run_child("bench.report_load", "--child", "stages", "--table", "unused", "--request-id", "small",
                               env=child_env(AIRFLOW_CONN_SMSEND_DEFAULT=smsend_uri), timeout=300)
            cumulative = stages["us_per_row_cumulative"]
            per_row = provider["seconds"] / provider["rows"] * 1e6
            breakdown = {  # differences of best-of-3 cumulative times: noise can make one slightly negative
                "HTTP stream + decode": cumulative["http_stream_decode"],
                "CSV parse (iter_batch_status)": cumulative["parse"] - cumulative["http_stream_decode"],
                "shape + adapt (records, adapters)": cumulative["shape_adapt"] - cumulative["parse"],
                "COPY write_row + server": cumulative["copy"] - cumulative["shape_adapt"],
            }
            say(f"  provider time per row {per_row:.1f} µs (raw COPY {1e6 / copy['rate']:.1f} µs); by stage on a "
                f"{SMALL_ROWS:,}-row stream ({cumulative['copy']:.1f} µs/row in all): "
                + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items()))
            figures["postgres"] = {"copy": copy, "provider": provider, "to_sql": to_sql,
                                   "us_per_row": per_row, "breakdown_us_per_row": breakdown,
                                   "stages_total_us_per_row": cumulative["copy"]}
            small_results: dict[str, dict[str, Any]] = {}
            for db in ("mysql", "sqlite"):
                p = load("provider", db, request_id="small", csv=small)
                t = load("to_sql", db, csv=small, rows=SMALL_ROWS)
                small_results[db] = {"provider": p, "to_sql": t}
                say(f"  {db} {SMALL_ROWS:,} rows: provider ({p['method']}) {p['rate']:,.0f} rows/s, "
                    f"to_sql ({t['driver']}) {t['rate']:,.0f} rows/s -> {p['rate'] / t['rate']:.1f}x; "
                    f"provider peak RSS {p['peak_rss_mb']:.0f} MB")
            figures.update(small_results)
        finally:
            stop_process(server)
            if server.stdout is not None:
                server.stdout.close()
            for db, tables in created.items():
                try:
                    _drop_tables(db, tables, sqlite_path)
                except Exception as exc:  # report, keep cleaning the others
                    say(f"  warning: could not drop {db} tables {tables}: {exc}")

    provider_ok = provider["table_rows"] == ROWS == provider["rows"]
    rows = [
        row("2. Report load", f"PostgreSQL, {ROWS:,}-row notify report, provider transfer vs raw COPY",
            target=f">= {TARGET_OF_COPY:.0%} of raw COPY rows/s",
            measured=f"{provider['rate']:,.0f} rows/s ({provider['seconds']:.1f} s, {provider['table_rows']:,} rows)",
            reference=f"{provider['rate'] / copy['rate']:.0%} of {copy['rate']:,.0f} rows/s",
            passed=provider_ok and provider["rate"] >= TARGET_OF_COPY * copy["rate"]),
        row("2. Report load", f"PostgreSQL, provider vs pandas to_sql defaults ({TO_SQL_PG_ROWS:,}-row subset)",
            target=f">= {TARGET_VS_TO_SQL:g}x to_sql",
            measured=f"{provider['rate']:,.0f} vs {to_sql['rate']:,.0f} rows/s",
            reference=f"{provider['rate'] / to_sql['rate']:.1f}x",
            passed=provider_ok and provider["rate"] >= TARGET_VS_TO_SQL * to_sql["rate"]),
        row("2. Report load", f"PostgreSQL {ROWS:,}-row load: peak RSS of the load process",
            target=f"< {TARGET_RSS_MB:.0f} MB",
            measured=f"{provider['peak_rss_mb']:.0f} MB",
            reference=f"{provider['rss_before_mb']:.0f} MB before the load (imports, hooks)",
            passed=provider["peak_rss_mb"] < TARGET_RSS_MB),
    ]
    breakdown = figures["postgres"]["breakdown_us_per_row"]
    rows.append(row(
        "2. Report load", f"PostgreSQL provider: µs per row by stage ({SMALL_ROWS:,}-row stream, best of 3)",
        target="(info)", measured="; ".join(f"{k} {v:.1f}" for k, v in breakdown.items()),
        reference=f"stages {figures['postgres']['stages_total_us_per_row']:.1f}, full load "
                  f"{figures['postgres']['us_per_row']:.1f}, raw COPY {1e6 / copy['rate']:.1f} µs/row",
    ))
    for db, label in (("mysql", "MariaDB"), ("sqlite", "SQLite")):
        p, t = figures[db]["provider"], figures[db]["to_sql"]
        rows.append(row(
            "2. Report load", f"{label}, {SMALL_ROWS:,} rows, provider ({p['method']}) vs to_sql",
            target="(info)", measured=f"{p['rate']:,.0f} vs {t['rate']:,.0f} rows/s",
            reference=f"{p['rate'] / t['rate']:.1f}x", passed=None,
        ))
    why = (
        f"The transfer spends {figures['postgres']['us_per_row']:.1f} µs per row against "
        f"{1e6 / copy['rate']:.1f} µs for PostgreSQL's own COPY of the CSV: every row is parsed and shaped in "
        "Python (by stage: " + ", ".join(f"{k} {v:.1f} µs" for k, v in breakdown.items()) + "). pandas `to_sql` "
        "over psycopg 3 (pipelined executemany) is only a few times slower than that path."
    )
    return {"name": NAME, "rows": rows, "figures": figures, "why": why, "notes": [
        "Provider path: `SmSendBatchStatusToSqlOperator(...).execute()` in a child process, connections from "
        "`AIRFLOW_CONN_*`; the report is streamed over HTTP from a stand-in gateway process "
        "(`bench/_report_server.py`) because the sandbox keeps reports small. Its time includes the HTTP "
        "stream, CSV parsing, row shaping, the replace-scope DELETE, COPY and commit.",
        "Raw COPY: the CSV file's bytes into a 4-column table (`id, dest, status, status_text`); the provider "
        "writes 10 columns per row (request id, report type, status class, load time... added).",
        f"to_sql: pandas defaults (`DataFrame.to_sql(table, engine)`, executemany, no chunksize) through the "
        f"common-sql hook's SQLAlchemy engine, on a DataFrame with the provider's 10 columns; only `to_sql` is "
        f"timed. On PostgreSQL it is timed on the first {TO_SQL_PG_ROWS:,} rows and its rate compared with the "
        f"provider's full {ROWS:,}-row rate (a full to_sql run would take minutes).",
        "Peak RSS: VmHWM of the child process that ran the load (Airflow and the providers imported).",
    ]}


if __name__ == "__main__":
    child_main()
