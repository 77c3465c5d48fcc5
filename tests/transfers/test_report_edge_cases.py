"""Hostile report lines on every warehouse (issue 17, item 5): a NUL byte, a field longer than its
column, an unclosed quote. Each is a clear error naming the report's line; the table is unchanged."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import SMSEND_CONN_ID, SqlTarget, StubGateway, context, notify_report

from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

GOOD = "id,dest,status,status_text\n1,+393331234567,200,Delivered\n"
BAD = {
    "NUL byte": ("id,dest,status,status_text\n1,+393331234567,200,Deli\x00vered\n", r"line 2 has a NUL byte"),
    "oversized field": (
        "id,dest,status,status_text\n1,+393331234567,200,OK\n2,+393331234568,200," + "x" * 256 + "\n",
        r"line 3 has a 'status_text' longer than 255 characters",
    ),
    "oversized dest": (
        "id,dest,status,status_text\n1,+39" + "3" * 40 + ",200,OK\n",
        r"line 2 has a 'dest' longer",
    ),
    "unclosed quote": (
        'id,dest,status,status_text\n1,+393331234567,200,"Delivered\n2,+393331234568,200,OK\n',
        r"line 2 has an unclosed quote",
    ),
}


def load(target: SqlTarget, table: str, request_id: str) -> dict[str, object]:
    return SmSendBatchStatusToSqlOperator(
        task_id="load",
        request_ids=[request_id],
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
    ).execute(context())


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_hostile_line_is_a_clear_error_and_the_table_is_unchanged(
    case: str, target: SqlTarget, gateway: StubGateway
) -> None:
    table = target.table("edge")
    gateway.batch[("REQ-OK", "notify")] = notify_report(5)
    load(target, table, "REQ-OK")
    before = target.rows(table, "id, dest, status, status_text")
    body, message = BAD[case]
    gateway.batch[("REQ-OK", "notify")] = body
    with pytest.raises(AirflowFailException, match=rf"REQ-OK {message}"):
        load(target, table, "REQ-OK")
    assert target.rows(table, "id, dest, status, status_text") == before


def test_a_field_at_its_limit_loads(target: SqlTarget, gateway: StubGateway) -> None:
    table = target.table("edge")
    gateway.batch[("REQ-MAX", "notify")] = GOOD.replace("Delivered", "é" * 255)
    assert load(target, table, "REQ-MAX")["rows"] == 1
    assert target.rows(table, "status_text")[0][0] == "é" * 255
