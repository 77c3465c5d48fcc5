"""End to end over real HTTP: send through the client to the suite's sandbox, load its reports into SQLite."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from transfer_helpers import context

from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator
from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator

if TYPE_CHECKING:
    import pytest


def test_send_then_load_the_notify_report_and_credit(
    sandbox: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "demo.db"
    monkeypatch.setenv("AIRFLOW_CONN_E2E_SQLITE", f'{{"conn_type": "sqlite", "host": "{db}"}}')
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_SANDBOX", sandbox.connection_uri)
    client = SmSendHook(smsend_conn_id="smsend_sandbox").client
    sent = [client.send(rcpt, "Load test", sender="DATA") for rcpt in ("+393331234567", "+393409876543")]
    request_ids = [str(s.request_id) for s in sent if s.request_id]
    assert len(request_ids) == 2

    result = SmSendBatchStatusToSqlOperator(
        task_id="load", request_ids=request_ids, conn_id="e2e_sqlite", smsend_conn_id="smsend_sandbox",
        table="sms_status",
    ).execute(context())  # fmt: skip
    again = SmSendBatchStatusToSqlOperator(
        task_id="load", request_ids=",".join(request_ids), conn_id="e2e_sqlite", smsend_conn_id="smsend_sandbox",
        table="sms_status",
    ).execute(context())  # fmt: skip
    u_id = 1001
    expected_credit = Decimal(sandbox.admin.credit(u_id))
    snapshot = SmSendCreditsToSqlOperator(
        task_id="credit", u_ids=[u_id], snapshot_date="2024-07-16", conn_id="e2e_sqlite",
        smsend_conn_id="smsend_sandbox", table="credit_snapshot",
    ).execute(context())  # fmt: skip

    assert result["rows"] == again["rows"] == 2 and again["deleted"] == 2
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT request_id, dest, status, status_class FROM sms_status ORDER BY dest"
        ).fetchall()
        credit = conn.execute("SELECT credit FROM credit_snapshot").fetchall()
    assert [(r[0], r[1]) for r in rows] == list(
        zip(request_ids, ("+393331234567", "+393409876543"), strict=True)
    )
    assert all(
        isinstance(r[2], int) and r[3] == {1: "pending", 2: "success", 3: "failure"}[r[2] // 100]
        for r in rows
    )
    assert snapshot["rows"] == 1 and [Decimal(c[0]) for c in credit] == [expected_credit]
