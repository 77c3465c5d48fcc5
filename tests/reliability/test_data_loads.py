"""Data: report loads are atomic, idempotent and exact, on SQLite, PostgreSQL and MariaDB.

The ``target`` and ``gateway`` fixtures and the report generators are tests/transfers' own
(imported through ``_shared``); a missing PostgreSQL or MariaDB fails the run under
``SMSEND_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from _shared import transfer_helpers as th
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator
from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator
from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

STATUS_COLUMNS = (
    "request_id, report_type, id, dest, status, status_class, status_text, netcode, loaded_at, dag_run_id"
)
USERLOG_COLUMNS = "id, date, u_id, username, bill_id, credit, report_type, loaded_at"
#: Amounts at the edges of NUMERIC(18,4): the smallest unit, the largest value, a comma separator.
AMOUNTS = ["0.0001", "99999999999999.9999", "10,5000", "123456.7891", "0.0000", "1"]
CREDITS = "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n" + "".join(
    f"{i}\t2024-07-15 12:00:0{i}\t42\tacme\t3\t{amount}\r\n" for i, amount in enumerate(AMOUNTS, start=1)
)


def status_load(target: Any, table: str, request_id: str, **kwargs: Any) -> dict[str, Any]:
    op = SmSendBatchStatusToSqlOperator(
        task_id="load_status",
        request_ids=request_id,
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=th.SMSEND_CONN_ID,
        **kwargs,
    )
    return op.execute(th.context())


def userlog_load(target: Any, table: str, **kwargs: Any) -> dict[str, Any]:
    op = SmSendUserlogToSqlOperator(
        task_id="load_userlog",
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=th.SMSEND_CONN_ID,
        date_from="2024-07-01",
        date_to="2024-07-31",
        **kwargs,
    )
    return op.execute(th.context())


def test_malformed_line_in_the_middle_leaves_the_table_exactly_as_it_was(target: Any, gateway: Any) -> None:
    table = target.table("rel")
    gateway.batch[("REQ-1", "notify")] = th.notify_report(30)
    gateway.batch[("REQ-2", "notify")] = th.notify_report(12, start_id=500)
    status_load(target, table, "REQ-1, REQ-2")
    before = target.rows(table, STATUS_COLUMNS, order="request_id, id")
    # Replacing REQ-1 with a report whose line 21 of 41 is malformed, 10 rows per chunk: two chunks
    # were already written (and REQ-1's old rows deleted) when the bad line is read.
    gateway.batch[("REQ-1", "notify")] = th.notify_report(40, start_id=1000, bad_line=21)

    with pytest.raises(AirflowFailException, match="line 21"):
        status_load(target, table, "REQ-1", chunk_size=10)

    assert target.rows(table, STATUS_COLUMNS, order="request_id, id") == before  # every column, every row


def test_money_report_with_a_malformed_line_writes_nothing(target: Any, gateway: Any) -> None:
    table = target.table("relu")
    gateway.userlog["credits"] = CREDITS
    userlog_load(target, table)
    before = target.rows(table, USERLOG_COLUMNS)
    gateway.userlog["credits"] = CREDITS.replace("\t123456.7891\r\n", "\t123.456.7891\r\n")

    with pytest.raises(AirflowFailException, match="line 5 has an invalid credit"):
        userlog_load(target, table, chunk_size=2)

    assert target.rows(table, USERLOG_COLUMNS) == before


def test_loading_the_same_report_twice_leaves_the_same_rows(target: Any, gateway: Any) -> None:
    status_table, userlog_table = target.table("rels"), target.table("relu")
    gateway.batch[("REQ-1", "notify")] = th.notify_report(25)
    gateway.userlog["credits"] = CREDITS
    same = "request_id, report_type, id, dest, status, status_class, status_text, netcode, dag_run_id"

    status_load(target, status_table, "REQ-1", chunk_size=7)
    userlog_load(target, userlog_table, chunk_size=4)
    first = (
        target.rows(status_table, same),
        target.rows(userlog_table, "id, date, u_id, username, bill_id, credit"),
    )
    second_status = status_load(target, status_table, "REQ-1", chunk_size=7)
    second_userlog = userlog_load(target, userlog_table, chunk_size=4)
    second = (
        target.rows(status_table, same),
        target.rows(userlog_table, "id, date, u_id, username, bill_id, credit"),
    )

    assert second == first
    assert len(first[0]) == 25 and len(first[1]) == len(AMOUNTS)
    assert second_status["deleted"] == 25 and second_userlog["deleted"] == len(AMOUNTS)


def test_money_round_trips_exactly(target: Any, gateway: Any) -> None:
    userlog_table, snapshot_table = target.table("relu"), target.table("relc")
    gateway.userlog["credits"] = CREDITS
    gateway.credits.update({str(u_id): f"OK {amount}" for u_id, amount in enumerate(AMOUNTS, start=1)})

    userlog_load(target, userlog_table)
    snapshot = SmSendCreditsToSqlOperator(
        task_id="snapshot",
        table=snapshot_table,
        conn_id=target.conn_id,
        smsend_conn_id=th.SMSEND_CONN_ID,
        u_ids=list(range(1, len(AMOUNTS) + 1)),
        snapshot_date="2024-07-16",
    ).execute(th.context())

    expected = [Decimal(a.replace(",", ".")) for a in AMOUNTS]
    stored = [target.money(r[0]) for r in target.rows(userlog_table, "credit")]
    assert stored == expected and [str(v) for v in stored] == [f"{v:.4f}" for v in expected]
    assert [target.money(r[0]) for r in target.rows(snapshot_table, "credit", order="u_id")] == expected
    assert Decimal(snapshot["total_credit"]) == sum(expected)
