"""Template fields of the transfers, the dialect layer, the psycopg2 COPY path, logs without secrets."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk import DAG
from transfer_helpers import SMSEND_CONN_ID, SqlTarget, StubGateway, context, notify_report

from airflow_provider_smsend.client.reports import credit_snapshot_frame, read_batch_status
from airflow_provider_smsend.sql.dialect import dialect_for
from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE, CREDIT_SNAPSHOT_TABLE, USERLOG_TABLE
from airflow_provider_smsend.sql.loader import AdbcSession, TableLayoutError, TableLoader, constant
from airflow_provider_smsend.transfers.base import BaseSmSendToSqlOperator
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator
from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator
from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

NOW = dt.datetime(2024, 7, 16, 8, 0, tzinfo=dt.UTC)

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
}
OPERATORS: dict[type[BaseSmSendToSqlOperator], dict[str, Any]] = {
    SmSendBatchStatusToSqlOperator: {},
    SmSendUserlogToSqlOperator: {},
    SmSendCreditsToSqlOperator: {},
}


@pytest.mark.parametrize("operator_class", list(OPERATORS), ids=lambda c: c.__name__)
def test_every_template_field_renders(operator_class: type[BaseSmSendToSqlOperator]) -> None:
    from airflow.sdk.execution_time import macros

    fields = operator_class.template_fields
    kwargs = {name: TEMPLATES[name][0] for name in fields}
    if operator_class is SmSendCreditsToSqlOperator:
        kwargs.pop("u_id_table")  # u_ids and u_id_table exclude each other: render each once
    with DAG("templates", schedule=None, start_date=dt.datetime(2024, 1, 1)):
        op = operator_class(task_id="t", **kwargs)
        other = SmSendCreditsToSqlOperator(task_id="o", conn_id="c", u_id_table=TEMPLATES["u_id_table"][0])
    params = {"env": "prod", "mode": "upsert", "rid": "HTTP123", "kind": "mnc", "log": "recv_add", "u_id": 42,
              "col": "smsend_u_id"}  # fmt: skip
    ctx = {"ds": "2024-07-16", "ds_nodash": "20240716", "macros": macros, "params": params}
    op.render_template_fields(ctx)  # type: ignore[arg-type]
    other.render_template_fields(ctx)  # type: ignore[arg-type]

    assert {name: getattr(op, name) for name in kwargs} == {name: TEMPLATES[name][1] for name in kwargs}
    assert other.u_id_table == "crm_prod.clients"
    assert set(BaseSmSendToSqlOperator.template_fields) <= set(fields)


def test_constructors_do_no_io_and_check_arguments() -> None:
    with pytest.raises(ValueError, match=r"Give u_ids \(client ids\) or u_id_table"):
        SmSendCreditsToSqlOperator(task_id="c", conn_id="x")
    with pytest.raises(ValueError, match="chunk_size"):
        SmSendBatchStatusToSqlOperator(task_id="b", conn_id="x", request_ids="R", chunk_size=0)
    op = SmSendBatchStatusToSqlOperator(task_id="b", conn_id="does_not_exist", request_ids="R")
    assert op.table == "smsend_batch_status" and op.load_mode == "replace"


def test_unknown_load_mode_is_refused(
    gateway: StubGateway, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_SQLITE", f'{{"conn_type": "sqlite", "host": "{tmp_path}/x.db"}}')
    op = SmSendBatchStatusToSqlOperator(
        task_id="b", conn_id="local_sqlite", smsend_conn_id=SMSEND_CONN_ID, request_ids="R", load_mode="merge"
    )
    gateway.batch[("R", "notify")] = notify_report(1)
    with pytest.raises(
        (ValueError, AirflowFailException), match="load_mode must be one of replace, append, upsert"
    ):
        op.execute(context())


def test_identifiers_are_checked_and_quoted_per_dialect() -> None:
    assert dialect_for("postgres").quote("analytics.sms") == '"analytics"."sms"'
    assert dialect_for("mysql").quote("sms") == "`sms`"
    assert dialect_for("mariadb").name == "mysql" and dialect_for("postgresql").name == "postgres"
    assert dialect_for("sqlite").placeholder == "?"
    for bad in ("sms; DROP TABLE x", "a.b.c d", 'x"y', ""):
        with pytest.raises(ValueError, match="Invalid table or column name"):
            dialect_for("sqlite").quote(bad)


def test_ddl_types_per_dialect() -> None:
    pg = dialect_for("postgres").create_table_sql("t", USERLOG_TABLE)
    my = dialect_for("mysql").create_table_sql("t", CREDIT_SNAPSHOT_TABLE)
    lite = dialect_for("sqlite").create_table_sql("t", BATCH_STATUS_TABLE)
    assert (
        '"date" TIMESTAMPTZ NOT NULL' in pg
        and '"credit" NUMERIC(18,4)' in pg
        and '"id" BIGINT NOT NULL' in pg
    )
    assert (
        "`credit` NUMERIC(18,4) NOT NULL" in my
        and "`loaded_at` DATETIME(6) NOT NULL" in my
        and "InnoDB" in my
    )
    assert '"dest" TEXT NOT NULL' in lite and '"status" INTEGER NOT NULL' in lite
    assert all(sql.startswith("CREATE TABLE IF NOT EXISTS") and "DROP" not in sql for sql in (pg, my, lite))
    generic = dialect_for("oracle")
    assert generic.name == "generic" and "TIMESTAMP" in generic.create_table_sql("t", USERLOG_TABLE)
    with pytest.raises(ValueError, match="No ON DUPLICATE KEY clause"):
        generic.upsert_clause(USERLOG_TABLE, USERLOG_TABLE.column_names)
    assert dialect_for("mysql").upsert_clause(CREDIT_SNAPSHOT_TABLE, CREDIT_SNAPSHOT_TABLE.column_names) == (
        "ON DUPLICATE KEY UPDATE `credit` = VALUES(`credit`), `loaded_at` = VALUES(`loaded_at`), "
        "`dag_run_id` = VALUES(`dag_run_id`)"
    )


def _sqlite_session(path: Any) -> AdbcSession:
    import adbc_driver_sqlite.dbapi

    return AdbcSession(adbc_driver_sqlite.dbapi.connect(str(path)), dialect_for("sqlite"))


def _snapshot(u_ids: Any, loaded_at: Any = NOW) -> Any:
    import pyarrow as pa

    frame = credit_snapshot_frame([(u, Decimal("1.0000")) for u in u_ids], snapshot_date=dt.date(2024, 7, 16))
    frame["loaded_at"] = constant(loaded_at, len(frame), pa.timestamp("us", tz="UTC"))
    frame["dag_run_id"] = constant(None, len(frame), pa.string())
    return frame


def test_naive_timestamps_are_refused(tmp_path: Any) -> None:
    import pandas as pd

    session = _sqlite_session(tmp_path / "naive.db")
    loader = TableLoader(session, "snap", CREDIT_SNAPSHOT_TABLE)
    loader.ensure_table()
    frame = _snapshot([1])
    frame["loaded_at"] = pd.Series([dt.datetime(2024, 1, 1)], dtype="datetime64[us]")
    with pytest.raises(ValueError, match="no time zone"):
        loader.load([frame], mode="append")
    assert session.query("SELECT COUNT(*) FROM snap") == [(0,)]


def test_existing_table_without_the_columns_is_a_clear_error(tmp_path: Any) -> None:
    session = _sqlite_session(tmp_path / "x.db")
    session.execute("CREATE TABLE sms (id INTEGER, other TEXT)")
    session.commit()
    with pytest.raises(TableLayoutError, match="lacks column"):
        TableLoader(session, "sms", BATCH_STATUS_TABLE).ensure_table()
    with pytest.raises(TableLayoutError, match="does not exist"):
        TableLoader(session, "missing", BATCH_STATUS_TABLE).ensure_table(create=False)
    with pytest.raises(TableLayoutError, match=r"column\(s\) region beyond the batch status layout"):
        TableLoader(session, "missing", BATCH_STATUS_TABLE).ensure_table(extra=["region"])
    assert session.query("SELECT name FROM sqlite_master WHERE type = 'table'") == [("sms",)]


def test_quotes_escapes_and_non_ascii_round_trip_on_postgres(postgres_target: SqlTarget) -> None:
    """ADBC's binary COPY: tabs, backslashes, quotes and non-ASCII text stored as the report had them."""
    import adbc_driver_postgresql.dbapi

    table = postgres_target.table("pgq")
    text = notify_report(20).replace(",Waiting", ',"Wait\\N\ting, ""quoted""\u00e8"')
    frame = read_batch_status([("R", text.encode(), None)], "notify")
    session = AdbcSession(adbc_driver_postgresql.dbapi.connect("postgresql://postgres@127.0.0.1:5432/test"),
                          dialect_for("postgres"))  # fmt: skip
    try:
        wide = TableLoader(session, table, BATCH_STATUS_TABLE)
        wide.ensure_table()
        import pyarrow as pa

        frame["report_type"] = constant("notify", len(frame), pa.string())
        frame["status_class"] = constant("pending", len(frame), pa.string())
        frame["loaded_at"] = constant(NOW, len(frame), pa.timestamp("us", tz="UTC"))
        frame["dag_run_id"] = constant(None, len(frame), pa.string())
        result = wide.load([frame], mode="replace", scope={"request_id": ["R"], "report_type": "notify"})
        money = TableLoader(session, postgres_target.table("pgm"), CREDIT_SNAPSHOT_TABLE)
        money.ensure_table()
        snap = _snapshot([1, 2])
        snap["credit"] = [Decimal("0.0001"), Decimal("123456.7891")]
        money.load([snap], mode="append")
    finally:
        session.close()

    assert result.method == "adbc" and result.rows == 20
    rows = postgres_target.rows(table, "status_text, netcode, loaded_at")
    assert ('Wait\\N\ting, "quoted"\u00e8', None, NOW) in rows
    assert postgres_target.rows(money.table, "credit", order="u_id") == [
        (Decimal("0.0001"),),
        (Decimal("123456.7891"),),
    ]


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


def test_frames_are_pulled_lazily_in_one_transaction(tmp_path: Any) -> None:
    session = _sqlite_session(tmp_path / "lazy.db")
    loader = TableLoader(session, "lazy", CREDIT_SNAPSHOT_TABLE)
    loader.ensure_table()
    seen_in_transaction: list[int] = []

    def frames() -> Any:
        for start in (1, 11, 21, 31):
            # the previous frames are written (open transaction) before the next is pulled
            seen_in_transaction.append(session.query("SELECT COUNT(*) FROM lazy")[0][0])
            yield _snapshot(range(start, min(start + 10, 36)))

    result = loader.load(frames(), mode="append")

    assert seen_in_transaction == [0, 10, 20, 30] and result.rows == 35
