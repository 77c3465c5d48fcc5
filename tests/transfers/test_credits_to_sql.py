"""SmSendCreditsToSqlOperator on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import SMSEND_CONN_ID, SqlTarget, StubGateway, context

from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator

UTC = dt.UTC


def credits_op(target: SqlTarget, table: str, **kwargs: object) -> SmSendCreditsToSqlOperator:
    return SmSendCreditsToSqlOperator(
        task_id="snapshot",
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
        **kwargs,  # type: ignore[arg-type]
    )


def test_credit_snapshot_from_a_list(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.credits.update({"42": "OK 0.0001", "43": "OK 123456.7891", "44": "OK 0.0000"})
    table = target.table("cs")

    first = credits_op(target, table, u_ids="42, 43,44", snapshot_date="2024-07-16").execute(context())
    gateway.credits["42"] = "OK 5.2500"
    second = credits_op(target, table, u_ids=[42, "43", 44], snapshot_date="2024-07-16").execute(context())
    credits_op(target, table, u_ids=[42], snapshot_date="2024-07-17").execute(context())

    assert first["rows"] == 3 and first["total_credit"] == "123456.7892" and second["deleted"] == 3
    rows = target.rows(
        table, "snapshot_date, u_id, credit, loaded_at, dag_run_id", order="snapshot_date, u_id"
    )
    assert [(str(r[0]), r[1], target.money(r[2])) for r in rows] == [
        ("2024-07-16", 42, Decimal("5.2500")),
        ("2024-07-16", 43, Decimal("123456.7891")),
        ("2024-07-16", 44, Decimal("0.0000")),
        ("2024-07-17", 42, Decimal("5.2500")),
    ]
    assert all(target.utc(r[3]) <= dt.datetime.now(UTC) for r in rows)


def test_credit_snapshot_of_the_ids_in_a_table(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.credits.update({"7": "OK 1.5000", "8": "OK 2.0000"})
    clients, table = target.table("cl"), target.table("cs")
    target.query(f"CREATE TABLE {clients} (smsend_u_id INTEGER, name VARCHAR(20))")
    for u_id, name in ((7, "a"), (8, "b"), (7, "c"), (None, "d")):
        target.query(f"INSERT INTO {clients} VALUES (%s, %s)", (u_id, name))

    logical = dt.datetime(2024, 7, 15, 22, 30, tzinfo=UTC)  # already the 16th in Rome
    op = credits_op(target, table, u_id_table=clients, u_id_column="smsend_u_id", load_mode="upsert")
    result = op.execute(context(logical_date=logical))
    op.execute(context(logical_date=logical))

    assert result["clients"] == 2 and result["snapshot_date"] == "2024-07-16"
    assert [(r[0], target.money(r[1])) for r in target.rows(table, "u_id, credit", order="u_id")] == [
        (7, Decimal("1.5000")),
        (8, Decimal("2.0000")),
    ]


def test_credit_get_failure_writes_nothing(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.credits["42"] = "OK 1.0000"
    table = target.table("cs")

    with pytest.raises(AirflowFailException, match="SmSendNotFoundError"):
        credits_op(target, table, u_ids=[42, 99], snapshot_date="2024-07-16").execute(context())

    assert gateway.calls[-1]["u_id"] == "99"
    assert not target.exists(table)  # every balance is asked before the database is touched


def test_the_client_ids_come_from_a_list_or_a_table_not_both() -> None:
    with pytest.raises(ValueError, match=r"Give u_ids \(client ids\) or u_id_table"):
        SmSendCreditsToSqlOperator(task_id="c", conn_id="x")
    with pytest.raises(ValueError, match="Give either u_ids or u_id_table, not both"):
        SmSendCreditsToSqlOperator(task_id="c", conn_id="x", u_ids=[1], u_id_table="clients")


def without_client_43(frame: Any) -> Any:
    """A transform by dotted path: leave client 43 out of the snapshot."""
    return frame[frame["u_id"] != 43]


def test_transform_filters_rows_by_callable_and_by_dotted_path(
    target: SqlTarget, gateway: StubGateway
) -> None:
    gateway.credits.update({"42": "OK 0.0001", "43": "OK 123456.7891", "44": "OK 0.0000"})
    by_callable, by_path = target.table("csc"), target.table("csp")

    kept = credits_op(
        target,
        by_callable,
        u_ids=[42, 43, 44],
        snapshot_date="2024-07-16",
        transform=lambda f: f[f["credit"] > 0],
    ).execute(context())
    by_name = credits_op(
        target,
        by_path,
        u_ids=[42, 43, 44],
        snapshot_date="2024-07-16",
        transform=f"{__name__}.without_client_43",
    ).execute(context())

    assert kept["rows"] == 2 and by_name["rows"] == 2 and kept["clients"] == 3
    assert [(r[0], target.money(r[1])) for r in target.rows(by_callable, "u_id, credit", order="u_id")] == [
        (42, Decimal("0.0001")),
        (43, Decimal("123456.7891")),
    ]
    assert [(r[0], target.money(r[1])) for r in target.rows(by_path, "u_id, credit", order="u_id")] == [
        (42, Decimal("0.0001")),
        (44, Decimal("0.0000")),
    ]
