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
from airflow_provider_smsend.transfers.inbound_to_sql import SmSendInboundToSqlOperator
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


# ---------------------------------------------------------------------------------- lineage and assets


def _expected_table_dataset(target: SqlTarget, table: str, path: str | None) -> tuple[str, str]:
    """The OpenLineage naming of each target database (openlineage.io's naming spec)."""
    if target.kind == "sqlite":
        return f"sqlite://{path}", table
    if target.kind == "postgres":
        return "postgres://127.0.0.1:5432", f"test.public.{table}"
    return "mysql://127.0.0.1:3306", f"test.{table}"


def test_lineage_names_the_gateway_report_and_the_table(target: SqlTarget, gateway: StubGateway) -> None:
    from airflow.sdk import BaseHook

    gateway.batch[("HTTP1", "notify")] = notify_report(5)
    table = target.table("lineage")
    op = SmSendBatchStatusToSqlOperator(
        task_id="load",
        request_ids="HTTP1",
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
    )
    result = op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(None)

    assert lineage is not None
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("smsend://gateway.test", "batch-status/notify")
    ]
    (output,) = lineage.outputs
    path = BaseHook.get_connection(target.conn_id).host
    assert (output.namespace, output.name) == _expected_table_dataset(target, table, path)
    assert [f.name for f in output.facets["schema"].fields] == list(op.spec.column_names)
    assert output.outputFacets["outputStatistics"].rowCount == result["rows"] == 5
    text = repr(lineage)
    for private in ("s3cret-pass", "res-s3cret", "+39333", "HTTP1"):  # no secret, number or request id
        assert private not in text


def test_lineage_of_each_transfer_names_what_it_reads(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH", f'{{"conn_type": "sqlite", "host": "{tmp_path}/wh.db"}}')
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER", f'{{"conn_type": "sqlite", "host": "{tmp_path}/ledger.db"}}')
    monkeypatch.setenv(
        "AIRFLOW_CONN_GW", '{"conn_type": "smsend", "host": "https://sms.reseller.example:8443/api", '
        '"login": "u", "password": "pw-s3cret"}'
    )  # fmt: skip
    common: dict[str, Any] = {"conn_id": "wh", "smsend_conn_id": "gw"}
    gateway = "smsend://sms.reseller.example:8443"
    cases: list[tuple[BaseSmSendToSqlOperator, list[tuple[str, str]]]] = [
        (
            SmSendUserlogToSqlOperator(task_id="a", log_type=" RECV_ADD ", **common),
            [(gateway, "userlog-get/recv_add")],
        ),
        (SmSendCreditsToSqlOperator(task_id="b", u_ids=[1], **common), [(gateway, "credit-get")]),
        (
            SmSendCreditsToSqlOperator(task_id="c", u_id_table="crm.clients", **common),
            [(gateway, "credit-get"), (f"sqlite://{tmp_path}/wh.db", "crm.clients")],
        ),
        (
            SmSendOutcomesToSqlOperator(task_id="d", send_task_id="send", ledger_conn_id="ledger", **common),
            [(f"sqlite://{tmp_path}/ledger.db", "smsend_send_ledger")],
        ),
        (SmSendOutcomesToSqlOperator(task_id="e", send_task_id="send", ledger_conn_id=None, **common), []),
        (
            SmSendInboundToSqlOperator(task_id="f", rcpt="+393400000001", sharecode="ABC", **common),
            [(gateway, "receiveSms")],
        ),
    ]
    for op, inputs in cases:
        lineage = op.get_openlineage_facets_on_complete(None)
        assert lineage is not None
        assert [(d.namespace, d.name) for d in lineage.inputs] == inputs, op.task_id
        extra = [(f"sqlite://{tmp_path}/wh.db", "smsend_suppression")] if op.task_id == "f" else []
        assert [(d.namespace, d.name) for d in lineage.outputs] == [
            (f"sqlite://{tmp_path}/wh.db", op.table),
            *extra,
        ]
        assert "+39340" not in repr(lineage)
        assert "outputStatistics" not in lineage.outputs[0].outputFacets  # nothing loaded yet
        assert "pw-s3cret" not in repr(lineage)


def test_the_openlineage_provider_extracts_the_transfers_lineage(
    target: SqlTarget, gateway: StubGateway
) -> None:
    from types import SimpleNamespace

    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.utils.state import TaskInstanceState

    gateway.userlog["credits"] = "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n"
    table = target.table("ol")
    with DAG("lineage_dag", schedule=None):
        op = SmSendUserlogToSqlOperator(
            task_id="load", table=table, conn_id=target.conn_id, smsend_conn_id=SMSEND_CONN_ID
        )
    op.execute(context())
    metadata = ExtractorManager().extract_metadata(
        SimpleNamespace(run_id="manual__1"), op, TaskInstanceState.SUCCESS, SimpleNamespace(task=op)
    )
    assert [(d.namespace, d.name) for d in metadata.inputs] == [
        ("smsend://gateway.test", "userlog-get/credits")
    ]
    assert [d.name for d in metadata.outputs] == [_expected_table_dataset(target, table, None)[1]]
    assert metadata.outputs[0].outputFacets["outputStatistics"].rowCount == 0


#: A fresh interpreter in which the openlineage provider's code cannot be imported (its metadata,
#: read by Airflow's provider discovery, still can): as if only the provider's code were missing.
WITHOUT_OPENLINEAGE = """
import importlib.abc, sys
ALLOWED = ("airflow.providers.openlineage", "airflow.providers.openlineage.get_provider_info")
class NoOpenLineage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        blocked = name.startswith(("airflow.providers.openlineage.", "airflow.providers.common.compat.openlineage"))
        if blocked and name not in ALLOWED or name.startswith("openlineage"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoOpenLineage())
import pkgutil, airflow_provider_smsend.transfers as transfers
for module in pkgutil.iter_modules(transfers.__path__):
    importlib.import_module(f"airflow_provider_smsend.transfers.{module.name}")
from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator
op = SmSendUserlogToSqlOperator(task_id="t", conn_id="wh")
print("lineage:", op.get_openlineage_facets_on_complete(None))
loaded = [m for m in sys.modules if m.startswith(("openlineage", "airflow.providers.openlineage."))]
assert set(loaded) <= set(ALLOWED), loaded
"""


def test_the_transfers_import_and_load_without_the_openlineage_provider() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENLINEAGE], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("lineage: None")


def test_a_load_with_an_asset_outlet_describes_the_load_in_the_event(
    target: SqlTarget, gateway: StubGateway
) -> None:
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import OutletEventAccessors

    gateway.batch[("HTTP7", "queue")] = "id,dest,status,status_text\r\n1,+393331234567,200,Sent\r\n"
    table = target.table("asset")
    asset = Asset(name="delivery_report", uri=f"warehouse://{table}")
    op = SmSendBatchStatusToSqlOperator(
        task_id="load",
        request_ids="HTTP7",
        report_type="queue",
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
        outlets=[asset],
    )
    events = OutletEventAccessors()
    op.execute(context(outlet_events=events))
    assert events[asset].extra == {"table": table, "rows": 1, "load_mode": "replace"}


@pytest.mark.parametrize("host", ["db.example", "::1", "/var/run/postgresql"])
def test_the_postgres_connection_reaches_libpq_whole(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ADBC's PostgreSQL driver gets a libpq URI built from the Airflow connection: libpq's own parser
    (psycopg's conninfo_to_dict) reads back every character of the credentials, the host (a name, an
    IPv6 address, a socket directory), the database and the libpq extras, and nothing else."""
    import json

    from psycopg.conninfo import conninfo_to_dict

    password = "p@ss:w/rd%?#&= é'\"\\"
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": host,
                "port": 6543,
                "login": "ana@corp",
                "password": password,
                "schema": "my db/è",
                "extra": {
                    "sslmode": "require",
                    "application_name": "smsend load",
                    "options": "-c search_path=reports,public",
                    "cursor": "realdictcursor",
                },
            }
        ),
    )
    operator = SmSendBatchStatusToSqlOperator(task_id="load", request_ids="HTTP1", conn_id="pg_warehouse")
    assert conninfo_to_dict(operator._libpq_uri()) == {
        "user": "ana@corp",
        "password": password,
        "host": host,
        "port": "6543",
        "dbname": "my db/è",
        "sslmode": "require",
        "application_name": "smsend load",
        "options": "-c search_path=reports,public",
    }


def test_a_postgres_connection_through_the_socket_directory_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from smsend_test_support.services import require_service

    def probe() -> None:
        import psycopg

        psycopg.connect(host="/var/run/postgresql", user="postgres", dbname="test", connect_timeout=5).close()

    if not os.path.isdir("/var/run/postgresql"):
        pytest.skip("no PostgreSQL socket directory here")
    require_service("PostgreSQL on its Unix socket (/var/run/postgresql)", probe)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_SOCKET",
        json.dumps(
            {"conn_type": "postgres", "host": "/var/run/postgresql", "login": "postgres", "schema": "test"}
        ),
    )
    operator = SmSendBatchStatusToSqlOperator(task_id="load", request_ids="HTTP1", conn_id="pg_socket")
    session = operator.open_session()
    try:
        assert session.query("SELECT 1") == [(1,)]
    finally:
        session.close()
