"""SmSendUserlogToSqlOperator on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import CREDITS_USERLOG, SMSEND_CONN_ID, SqlTarget, StubGateway, context

from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

UTC = dt.UTC


def userlog_op(target: SqlTarget, table: str, **kwargs: object) -> SmSendUserlogToSqlOperator:
    return SmSendUserlogToSqlOperator(
        task_id="load_userlog",
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
        **kwargs,  # type: ignore[arg-type]
    )


def test_userlog_money_and_rome_time_zones(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.userlog["credits"] = CREDITS_USERLOG
    table = target.table("ul")

    result = userlog_op(target, table, date_from="2024-01-01", date_to="2024-12-31").execute(context())

    assert result["rows"] == 3 and result["date_from"] == "2024-01-01" and result["date_to"] == "2024-12-31"
    assert gateway.calls[-1]["from"] == "2024-01-01" and gateway.calls[-1]["smsusername"] == "reseller"
    rows = target.rows(
        table, "id, date, u_id, username, bill_id, credit, dest, report_type, date_from, filter_u_id"
    )
    assert [target.utc(r[1]) for r in rows] == [
        dt.datetime(2024, 7, 15, 10, 0, tzinfo=UTC),  # Rome summer time: UTC+2
        dt.datetime(2024, 1, 15, 11, 0, tzinfo=UTC),  # Rome winter time: UTC+1
        dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC),  # the repeated hour of the switch: the first one
    ]
    assert [target.money(r[5]) for r in rows] == [
        Decimal("0.0001"),
        Decimal("123456.7891"),
        Decimal("10.5000"),
    ]
    assert [(r[0], r[2], r[3], r[4], r[6], r[7], r[9]) for r in rows] == [
        (1, 42, "acme", 3, None, "credits", None),
        (2, 42, "acme", 3, None, "credits", None),
        (3, 43, "beta", 3, None, "credits", None),
    ]
    assert str(rows[0][8]) == "2024-01-01"


def test_userlog_reload_replaces_the_same_window_only(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.userlog["recv_add"] = (
        "id\tdate\tu_id\tusername\tdest\tsharecode\r\n"
        "7\t2024-07-01 09:00:00\t42\tacme\t+393331234567\tABC123\r\n"
    )
    table = target.table("ul")

    userlog_op(target, table, log_type="recv_add", date_from="2024-07-01", date_to="2024-07-01").execute(
        context()
    )
    userlog_op(target, table, log_type="recv_add", date_from="2024-07-02", date_to="2024-07-02").execute(
        context()
    )
    second = userlog_op(
        target, table, log_type="recv_add", date_from="2024-07-01", date_to="2024-07-01", u_id="42"
    )
    second.execute(context())
    again = userlog_op(
        target, table, log_type="recv_add", date_from="2024-07-01", date_to="2024-07-01", u_id=42
    )
    result = again.execute(context())

    assert result["deleted"] == 1 and result["u_id"] == 42
    rows = target.rows(table, "id, dest, sharecode, filter_u_id, date_from", order="id")
    assert sorted((str(r[4]), r[3] or 0, r[0], r[1], r[2]) for r in rows) == [
        ("2024-07-01", 0, 7, "+393331234567", "ABC123"),
        ("2024-07-01", 42, 7, "+393331234567", "ABC123"),
        ("2024-07-02", 0, 7, "+393331234567", "ABC123"),
    ]


def test_userlog_malformed_line_rolls_back(
    target: SqlTarget, gateway: StubGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_smsend.client import reports

    monkeypatch.setattr(reports, "BLOCK_BYTES", 256)  # blocks of a few lines: some are loaded first
    table = target.table("ul")
    gateway.userlog["credits"] = CREDITS_USERLOG
    userlog_op(target, table).execute(context())
    good = "\r\n".join(f"{i}\t2024-03-01 10:00:00\t42\tacme\t3\t1.0000" for i in range(100, 130))
    gateway.userlog["credits"] = CREDITS_USERLOG + good + "\r\n105\t2024-03-01 10:00:00\t42\tacme\t3\tabc\r\n"

    with pytest.raises(AirflowFailException, match=r"line 35 has an invalid credit: 'abc'"):
        userlog_op(target, table, chunk_size=10).execute(context())

    assert target.count(table) == 3


def only_beta(frame: Any) -> Any:
    """A transform by dotted path: keep the operations of the user ``beta``."""
    return frame[frame["username"] == "beta"]


def test_transform_filters_rows_by_callable_and_by_dotted_path(
    target: SqlTarget, gateway: StubGateway
) -> None:
    gateway.userlog["credits"] = CREDITS_USERLOG
    by_callable, by_path = target.table("ulc"), target.table("ulp")

    kept = userlog_op(target, by_callable, transform=lambda f: f[f["u_id"] == 42]).execute(context())
    userlog_op(target, by_path, transform=f"{__name__}.only_beta").execute(context())
    again = userlog_op(target, by_path, transform=f"{__name__}.only_beta").execute(context())

    assert kept["rows"] == 2 and (again["rows"], again["deleted"]) == (1, 1)
    assert [(r[0], r[1], target.money(r[2])) for r in target.rows(by_callable, "id, u_id, credit")] == [
        (1, 42, Decimal("0.0001")),
        (2, 42, Decimal("123456.7891")),
    ]
    assert [
        (r[0], r[1], r[2], target.money(r[3])) for r in target.rows(by_path, "id, u_id, username, credit")
    ] == [(3, 43, "beta", Decimal("10.5000"))]
