"""SmSendOutcomesToSqlOperator: the ledger's per-recipient outcomes -> SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from smsend_test_support.operator_fixtures import build_context

from airflow_provider_smsend.client.ledger import ACCEPTED, REJECTED, UNKNOWN, LedgerEntry, new_owner
from airflow_provider_smsend.client.numbers import pseudonym
from airflow_provider_smsend.sql.ledger import DbApiLedger
from airflow_provider_smsend.transfers.outcomes_to_sql import SmSendOutcomesToSqlOperator

JOB = "campaign/send_campaign/manual__1/-1"
NUMBERS = ["+393331234561", "+393331234562", "+393331234563"]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DbApiLedger:
    """A SQLite ledger (connection ``smsend_ledger``) holding one send's outcomes, from two tries."""
    path = tmp_path / "ledger.db"
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_LEDGER", f"sqlite://{path}")
    # the gateway connection: its password keys the recipients' pseudonyms (recipient_key)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSEND_DEFAULT",
        json.dumps(
            {"conn_type": "smsend", "host": "127.0.0.1", "login": "u", "password": "pseudonym-secret"}
        ),
    )
    store = DbApiLedger(lambda: sqlite3.connect(path), dialect="sqlite", placeholder="?")
    first, second = new_owner("try 1"), new_owner("try 2")
    store.claim(JOB, NUMBERS[:2], owner=first)
    store.record(
        [
            LedgerEntry(JOB, NUMBERS[0], ACCEPTED, request_id="HTTP00000000001", cost="0.0850"),
            LedgerEntry(JOB, NUMBERS[1], UNKNOWN, error_code="timeout"),
        ],
        owner=first,
    )
    store.claim(JOB, [NUMBERS[2]], owner=second)
    store.record([LedgerEntry(JOB, NUMBERS[2], REJECTED, error_code="invalid_number")], owner=second)
    return store


def test_outcomes_load_masked_with_their_try(target: Any, ledger: DbApiLedger) -> None:
    table = target.table("outcomes")
    task = SmSendOutcomesToSqlOperator(
        task_id="load_outcomes", send_task_id="send_campaign", conn_id=target.conn_id, table=table
    )
    context = build_context(dag_id="campaign", task_id="load_outcomes", run_id="manual__1")
    result = task.execute(context)
    assert result["rows"] == 3 and result["ledger_key"] == JOB
    assert result["totals"] == {"accepted": 1, "unknown": 1, "rejected": 1}
    rows = target.rows(
        table, "recipient, status, cost, error_code, request_id, try_number", order="recipient_key"
    )
    by_status = {r[1]: r for r in rows}
    assert {r[0] for r in rows} == {"+39333****561", "+39333****562", "+39333****563"}
    assert Decimal(str(by_status["accepted"][2])) == Decimal("0.0850")
    assert by_status["accepted"][4] == "HTTP00000000001" and by_status["accepted"][5] == 1
    assert by_status["rejected"][3] == "invalid_number" and by_status["rejected"][5] == 2
    assert not any(n in str(rows) for n in NUMBERS)  # no full number unless asked
    keys = {r[0] for r in target.rows(table, "recipient_key", order="recipient_key")}
    assert keys == {pseudonym(n, "pseudonym-secret") for n in NUMBERS}  # keyed by the connection's secret
    # replace mode: a second load of the same job replaces its rows
    assert task.execute(context)["rows"] == 3 and target.count(table) == 3


def test_full_numbers_only_when_asked(target: Any, ledger: DbApiLedger) -> None:
    table = target.table("outcomes")
    SmSendOutcomesToSqlOperator(
        task_id="load", ledger_key=JOB, unmask_recipients=True, conn_id=target.conn_id, table=table
    ).execute(build_context(task_id="load"))
    assert sorted(r[0] for r in target.rows(table, "recipient", order="recipient")) == NUMBERS


def test_send_task_id_or_ledger_key() -> None:
    with pytest.raises(ValueError, match="send_task_id"):
        SmSendOutcomesToSqlOperator(task_id="t", conn_id="w")
    with pytest.raises(ValueError, match="not both"):
        SmSendOutcomesToSqlOperator(task_id="t", conn_id="w", send_task_id="s", ledger_key="k")
