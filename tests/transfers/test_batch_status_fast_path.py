"""The wide-layout PostgreSQL fast path (tables made by hand or before 0.2) of queue/notify batch-status
loads: same rows, same errors, binary COPY."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import SMSEND_CONN_ID, SqlTarget, StubGateway, context, notify_report

from airflow_provider_smsend.client.errors import SmSendReportError
from airflow_provider_smsend.client.reports import iter_batch_status
from airflow_provider_smsend.client.sqlload import TableLoader
from airflow_provider_smsend.client.tables import (
    BATCH_STATUS_TABLE,
    batch_status_records,
    binary_copy_types,
    dialect_for,
    fast_batch_status_records,
)
from airflow_provider_smsend.transfers import batch_status_to_sql
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

NOW = dt.datetime(2024, 7, 16, 8, 0, tzinfo=dt.UTC)
COLUMNS = (
    "request_id, report_type, id, dest, status, status_class, status_text, netcode, loaded_at, dag_run_id"
)

#: Lines the plain split cannot take: quotes, padding, blanks, leading zeros, a negative status,
#: an empty status text, a status outside 1xx-3xx, under a reordered header with an extra column.
TRICKY_REPORT = (
    "\r\n"
    " Status , DEST,id,status_text,extra\r\n"
    "200,+393331000001,1,Delivered,x\r\n"
    '"300","+393331000002",2,"Unknown, ""quoted"" subscriber",y\r\n'
    "   \r\n"
    " 100 ,  +393331000003 , 0003 ,  Waiting  ,\r\n"
    "-5,+393331000004,4,,z\r\n"
    "0200,+393331000005,5,Delivered \u00e8,\r\n"
    "999,+39 333 1000006,6, Odd ,\r\n"
)


def both(lines: list[str], report_type: str = "notify") -> tuple[Any, Any]:
    """The records (or the error) of the fast path and of the Python path for the same lines."""
    results: list[Any] = []
    for fast in (True, False):
        try:
            if fast:
                records = fast_batch_status_records(
                    lines, request_id="R", report_type=report_type, loaded_at=NOW, dag_run_id="run"
                )
            else:
                records = batch_status_records(
                    iter_batch_status(lines, report_type),
                    request_id="R", report_type=report_type, loaded_at=NOW, dag_run_id="run",
                )  # fmt: skip
            results.append(list(records))
        except SmSendReportError as exc:
            results.append((str(exc), exc.line))
    return results[0], results[1]


def test_fast_records_equal_the_python_path_on_tricky_lines() -> None:
    fast, python = both(TRICKY_REPORT.splitlines(keepends=True))

    assert fast == python
    assert [r[2:7] for r in fast] == [
        (1, "+393331000001", 200, "success", "Delivered"),
        (2, "+393331000002", 300, "failure", 'Unknown, "quoted" subscriber'),
        (3, "+393331000003", 100, "pending", "Waiting"),
        (4, "+393331000004", -5, "unknown", ""),
        (5, "+393331000005", 200, "success", "Delivered \u00e8"),
        (6, "+39 333 1000006", 999, "unknown", "Odd"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("7,+393331000007,2OO,Delivered", r"line 4: column 'status' is not an integer: '2OO'"),
        ("7,+393331000007,+200,Delivered", r"line 4: column 'status' is not an integer: '\+200'"),
        ("7x,+393331000007,200,Delivered", r"line 4: column 'id' is not an integer: '7x'"),
        ("7,  ,200,Delivered", r"line 4: empty dest"),
        ("7,+393331000007,200,Delivered,extra", r"line 4 has 5 field\(s\), expected 4"),
        ("7,+393331000007,200", r"line 4 has 3 field\(s\), expected 4"),
        ("7,+39333\r1000007,200,Delivered", r"Line 4 is not valid CSV"),
        ("1" * 5000 + ",+393331000007,200,Delivered", r"line 4: column 'id' is not a usable integer"),
    ],
)
def test_fast_errors_equal_the_python_path(line: str, message: str) -> None:
    lines = ["id,dest,status,status_text", "1,+393331000001,200,Delivered", "", line, "9,+3933,200,Late"]

    fast, python = both(lines)

    assert fast == python
    assert isinstance(fast, tuple) and fast[1] == 4
    assert re.search(message, fast[0]), fast[0]


def test_fast_header_errors_equal_the_python_path() -> None:
    for lines in (
        ["id,number,status"],
        ["KO Parametro id non corretto."],
        ["", "  "],
        ["id,dest,status,status_text,id"],
    ):
        fast, python = both(lines)
        assert fast == python and isinstance(fast, tuple)


def test_binary_copy_types_only_for_the_layout_types() -> None:
    oids = [1043, 1043, 20, 1043, 23, 1043, 1043, 1043, 1184, 25]
    assert binary_copy_types(BATCH_STATUS_TABLE, oids) == [
        "varchar", "varchar", "int8", "varchar", "int4", "varchar", "varchar", "varchar", "timestamptz", "text",
    ]  # fmt: skip
    assert binary_copy_types(BATCH_STATUS_TABLE, [*oids[:2], 1700, *oids[3:]]) is None  # id NUMERIC
    assert binary_copy_types(BATCH_STATUS_TABLE, oids[:-1]) is None


# ---------------------------------------------------------------------------------- end to end


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Request ids whose report went through the fast path."""
    calls: list[str] = []
    real = batch_status_to_sql.fast_batch_status_records

    def spy(lines: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["request_id"])
        return real(lines, **kwargs)

    monkeypatch.setattr(batch_status_to_sql, "fast_batch_status_records", spy)
    return calls


def wide_table(target: SqlTarget, prefix: str = "fast") -> str:
    """A batch-status table in the wide layout (made by hand, or by a provider before 0.2): new
    PostgreSQL tables get the compact layout (test_batch_status_compact.py), this one keeps its own."""
    table = target.table(prefix)
    with target.connect() as conn:
        TableLoader(conn, dialect_for(target.kind), table, BATCH_STATUS_TABLE).ensure_table()
    return table


def load(target: SqlTarget, table: str, request_ids: object, **kwargs: Any) -> dict[str, Any]:
    return SmSendBatchStatusToSqlOperator(
        task_id="load_status", request_ids=request_ids, table=table,  # type: ignore[arg-type]
        conn_id=target.conn_id, smsend_conn_id=SMSEND_CONN_ID, **kwargs,
    ).execute(context())  # fmt: skip


def test_bad_line_deep_in_a_large_report_rolls_back_and_names_it(
    postgres_target: SqlTarget, gateway: StubGateway, fast_calls: list[str]
) -> None:
    table = wide_table(postgres_target)
    gateway.batch[("OLD", "notify")] = notify_report(5)
    gateway.batch[("BIG", "notify")] = notify_report(1_000, start_id=10)
    load(postgres_target, table, "OLD, BIG")
    before = postgres_target.rows(table, COLUMNS, order="request_id, id")
    gateway.batch[("BIG", "notify")] = notify_report(200_000, start_id=10, bad_line=150_001)

    with pytest.raises(AirflowFailException, match=r"line 150001: column 'status' is not an integer: '2OO'"):
        load(postgres_target, table, "BIG", chunk_size=10_000)  # 14 chunks written before the bad line

    assert postgres_target.rows(table, COLUMNS, order="request_id, id") == before
    assert fast_calls == ["OLD", "BIG", "BIG"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("7,+393331000007,2x0,Delivered", r"line 8: column 'status' is not an integer: '2x0'"),
        ("7,+393331000007,200,Delivered,extra", r"line 8 has 5 field\(s\), expected 4"),
        ("7,,200,Delivered", r"line 8: empty dest"),
    ],
)
def test_malformed_line_fails_the_fast_load(
    postgres_target: SqlTarget, gateway: StubGateway, fast_calls: list[str], bad: str, message: str
) -> None:
    table = wide_table(postgres_target)
    lines = notify_report(10).split("\r\n")
    lines[7] = bad
    gateway.batch[("R", "notify")] = "\r\n".join(lines)

    with pytest.raises(AirflowFailException, match=message):
        load(postgres_target, table, "R")

    assert postgres_target.count(table) == 0 and fast_calls == ["R"]


def test_fast_load_equals_the_python_load(
    target: SqlTarget, postgres_target: SqlTarget, gateway: StubGateway, fast_calls: list[str]
) -> None:
    """The same report (tricky lines, reordered header) through PostgreSQL's fast path and through
    the Python path of the parametrized target (SQLite, MariaDB, and PostgreSQL forced slow)."""
    more = "".join(f"{200 + i % 3 * 100},+39333{i:07d},{100 + i},Text {i % 7},\r\n" for i in range(2_000))
    gateway.batch[("T", "queue")] = TRICKY_REPORT + more
    fast_table = wide_table(postgres_target)
    load(postgres_target, fast_table, "T", report_type="queue")
    assert fast_calls == ["T"]
    slow_table = wide_table(target, "slow") if target.kind == "postgres" else target.table("slow")
    if target.kind == "postgres":
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(SmSendBatchStatusToSqlOperator, "_fast_path", lambda self, report_type: False)
            load(target, slow_table, "T", report_type="queue")
        assert fast_calls == ["T"]
    else:
        load(target, slow_table, "T", report_type="queue")

    same = "request_id, report_type, id, dest, status, status_class, status_text, netcode, dag_run_id"
    fast_rows, slow_rows = postgres_target.rows(fast_table, same), target.rows(slow_table, same)
    assert len(fast_rows) == 2_006 and fast_rows == slow_rows
    stamps = postgres_target.query(f"SELECT DISTINCT loaded_at FROM {fast_table}")
    assert len(stamps) == 1 and postgres_target.utc(stamps[0][0]).utcoffset() == dt.timedelta(0)


def test_hand_made_table_with_other_types_loads_through_text_copy(postgres_target: SqlTarget) -> None:
    """A table created by hand with other (compatible) types: no binary COPY, the server casts."""
    import psycopg

    table = postgres_target.table("hand")
    postgres_target.query(
        f"CREATE TABLE {table} (request_id TEXT, report_type TEXT, id NUMERIC(20), dest TEXT, status BIGINT, "
        "status_class TEXT, status_text TEXT, netcode TEXT, loaded_at TIMESTAMP, dag_run_id TEXT)"
    )
    lines = notify_report(25).splitlines()
    records = fast_batch_status_records(
        lines, request_id="R", report_type="notify", loaded_at=NOW, dag_run_id=None
    )
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test") as conn:
        loader = TableLoader(conn, dialect_for("postgres"), table, BATCH_STATUS_TABLE, chunk_size=10)
        loader.ensure_table()
        result = loader.load(records, scope={"request_id": "R", "report_type": "notify"}, adapted=True)

    assert result.rows == 25 and result.method == "copy"
    rows = postgres_target.rows(table, "id, status, status_class, dag_run_id")
    assert rows[0] == (1, 100, "pending", None) and len(rows) == 25
