"""transfers/base.py: what every smSend -> SQL transfer shares: template fields, argument checks, the
load mode, the SQL connection, logs without secrets, and the frame helpers."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import SMSEND_CONN_ID, SqlTarget, StubGateway, context, notify_report

from airflow_provider_smsend.transfers.base import (
    BaseSmSendToSqlOperator,
    as_date,
    as_list,
    close_source,
    peek,
)
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator
from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator
from airflow_provider_smsend.transfers.outcomes_to_sql import SmSendOutcomesToSqlOperator
from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

#: Every template field of every transfer, with a template and what it must render to.
TEMPLATES: dict[str, tuple[Any, Any]] = {
    "table": ("reports_{{ params.env }}", "reports_prod"),
    "conn_id": ("{{ params.env }}_warehouse", "prod_warehouse"),
    "smsend_conn_id": ("smsend_{{ params.env }}", "smsend_prod"),
    "load_mode": ("{{ params.mode }}", "upsert"),
    "hook_params": ({"schema": "{{ params.env }}"}, {"schema": "prod"}),
    "request_ids": (["{{ params.rid }}", "B{{ ds_nodash }}"], ["HTTP123", "B20240716"]),
    "report_type": ("{{ params.kind }}", "mnc"),
    "log_type": ("{{ params.log }}", "recv_add"),
    "u_id": ("{{ params.u_id }}", "42"),
    "date_from": ("{{ macros.ds_add(ds, -1) }}", "2024-07-15"),
    "date_to": ("{{ ds }}", "2024-07-16"),
    "u_ids": ("{{ params.u_id }},43", "42,43"),
    "u_id_table": ("crm_{{ params.env }}.clients", "crm_prod.clients"),
    "u_id_column": ("{{ params.col }}", "smsend_u_id"),
    "snapshot_date": ("{{ ds }}", "2024-07-16"),
    "send_task_id": ("send_{{ params.env }}", "send_prod"),
    "ledger_key": ("campaign/{{ ds }}", "campaign/2024-07-16"),
    "ledger_conn_id": ("ledger_{{ params.env }}", "ledger_prod"),
    "ledger_table": ("ledger_{{ params.mode }}", "ledger_upsert"),
}
#: Every transfer, and the template field that excludes another (rendered by a second instance).
OPERATORS: dict[type[BaseSmSendToSqlOperator], str | None] = {
    SmSendBatchStatusToSqlOperator: None,
    SmSendUserlogToSqlOperator: None,
    SmSendCreditsToSqlOperator: "u_id_table",  # or u_ids
    SmSendOutcomesToSqlOperator: "ledger_key",  # or send_task_id
}


@pytest.mark.parametrize("operator_class", list(OPERATORS), ids=lambda c: c.__name__)
def test_every_template_field_renders(operator_class: type[BaseSmSendToSqlOperator]) -> None:
    from airflow.sdk.execution_time import macros

    fields = operator_class.template_fields
    kwargs = {name: TEMPLATES[name][0] for name in fields}
    exclusive = OPERATORS[operator_class]
    alone = {exclusive: kwargs.pop(exclusive)} if exclusive else {}
    with DAG("templates", schedule=None, start_date=dt.datetime(2024, 1, 1)):
        op = operator_class(task_id="t", **kwargs)
        other = operator_class(task_id="o", conn_id="c", **alone) if alone else op
    params = {"env": "prod", "mode": "upsert", "rid": "HTTP123", "kind": "mnc", "log": "recv_add", "u_id": 42,
              "col": "smsend_u_id"}  # fmt: skip
    ctx = {"ds": "2024-07-16", "ds_nodash": "20240716", "macros": macros, "params": params}
    op.render_template_fields(ctx)  # type: ignore[arg-type]
    other.render_template_fields(ctx)  # type: ignore[arg-type]

    assert {name: getattr(op, name) for name in kwargs} == {name: TEMPLATES[name][1] for name in kwargs}
    assert {name: getattr(other, name) for name in alone} == {name: TEMPLATES[name][1] for name in alone}
    assert set(BaseSmSendToSqlOperator.template_fields) <= set(fields)


def test_constructors_do_no_io_and_check_arguments() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        SmSendBatchStatusToSqlOperator(task_id="b", conn_id="x", request_ids="R", chunk_size=0)
    with pytest.raises(TypeError, match="transform must be a callable or a dotted import path"):
        SmSendBatchStatusToSqlOperator(task_id="b", conn_id="x", request_ids="R", transform=42)  # type: ignore[arg-type]
    op = SmSendBatchStatusToSqlOperator(task_id="b", conn_id="does_not_exist", request_ids="R")
    assert op.table == "smsend_batch_status" and op.load_mode == "replace"


def test_unknown_load_mode_is_refused(
    gateway: StubGateway, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_SQLITE", f'{{"conn_type": "sqlite", "host": "{tmp_path}/x.db"}}')
    op = SmSendBatchStatusToSqlOperator(
        task_id="b", conn_id="local_sqlite", smsend_conn_id=SMSEND_CONN_ID, request_ids="R", load_mode="merge"
    )
    gateway.batch[("R", "notify")] = notify_report(1)
    with pytest.raises(
        (ValueError, AirflowFailException), match="load_mode must be one of replace, append, upsert"
    ):
        op.execute(context())


def test_a_connection_that_is_not_a_sql_database_is_refused(
    gateway: StubGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", "smsend://user:pass@gateway.test")
    op = SmSendBatchStatusToSqlOperator(
        task_id="b", conn_id="not_sql", smsend_conn_id=SMSEND_CONN_ID, request_ids="R"
    )
    with pytest.raises(AirflowFailException, match="is not a SQL database"):
        op.execute(context())
    assert gateway.calls == []  # refused before any report was fetched


def test_logs_carry_counts_and_no_secret(
    target: SqlTarget,
    gateway: StubGateway,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway.batch[("R", "notify")] = notify_report(5)
    caplog.set_level(logging.DEBUG)
    op = SmSendBatchStatusToSqlOperator(
        task_id="b",
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
        request_ids="R",
        table=target.table("lg"),
    )
    op.execute(context())

    out = caplog.text + "".join(capsys.readouterr())
    assert "Loaded 5 row(s)" in out
    assert "s3cret-pass" not in out and "res-s3cret" not in out


def test_peek_gives_the_first_frame_and_every_frame_again_and_closes_the_source() -> None:
    closed: list[bool] = []

    def frames() -> Any:
        try:
            yield from ("a", "b", "c")
        finally:
            closed.append(True)

    first, again = peek(frames())
    assert first == "a" and list(again) == ["a", "b", "c"] and closed == [True]
    first, again = peek(frames())
    close_source(again)  # never iterated: the generator is still closed
    assert first == "a" and closed == [True, True]
    assert peek([])[0] is None and list(peek([])[1]) == []
    close_source(["not", "a", "generator"])  # nothing to close: nothing happens


def test_templated_lists_and_dates() -> None:
    assert as_list("A, B C,,A") == ["A", "B", "C"] and as_list(["1", 2, " 1 "]) == ["1", "2"]
    assert as_list(None) == [] and as_list(7) == ["7"]
    day = dt.date(2024, 7, 16)
    assert as_date("2024-07-16", what="d") == as_date("2024-07-16T08:00:00+00:00", what="d") == day
    assert as_date(dt.datetime(2024, 7, 16, 23, 59), what="d") == as_date(day, what="d") == day
    assert as_date("", what="d") is None and as_date(None, what="d") is None
    with pytest.raises(AirflowFailException, match="date_from must be a date YYYY-MM-DD, got 'yesterday'"):
        as_date("yesterday", what="date_from")
