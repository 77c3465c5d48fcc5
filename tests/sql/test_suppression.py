"""SuppressionList on SQLite, PostgreSQL and MariaDB, through their common-sql hooks: the table is
made once, entries are added if absent (first reason and time kept), numbers in any written form
are one entry, lookups are batched and normalised, bad input adds nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smsend_test_support.services import require_service

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.sql.suppression import BATCH, SuppressionList

POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URI = "mysql://root@127.0.0.1:3306/test"
SINCE = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 00:30 UTC


def _sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    monkeypatch.setenv("AIRFLOW_CONN_SUPPRESSION_SQLITE", f"sqlite://{tmp_path / 'w.db'}")
    return SqliteHook(sqlite_conn_id="suppression_sqlite")


def _postgres(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_SUPPRESSION_PG", POSTGRES_URI)
    hook = PostgresHook(postgres_conn_id="suppression_pg")
    require_service("PostgreSQL on 127.0.0.1:5432", lambda: hook.get_conn().close())
    return hook


def _mariadb(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    monkeypatch.setenv("AIRFLOW_CONN_SUPPRESSION_MARIADB", MARIADB_URI)
    hook = MySqlHook(mysql_conn_id="suppression_mariadb")
    require_service("MariaDB on 127.0.0.1:3306", lambda: hook.get_conn().close())
    return hook


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def hook(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    if request.param == "sqlite":
        return _sqlite(tmp_path, monkeypatch)
    if request.param == "postgres":
        return _postgres(monkeypatch)
    return _mariadb(monkeypatch)


@pytest.fixture
def optouts(hook: Any) -> Iterator[SuppressionList]:
    table = f"smsend_supp_{uuid.uuid4().hex[:10]}"
    made = SuppressionList(hook, table)
    made.ensure()
    yield made
    conn = hook.get_conn()
    try:
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
    finally:
        conn.close()


def _rows(optouts: SuppressionList) -> list[tuple[Any, ...]]:
    conn = optouts.hook.get_conn()
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT number, reason, since FROM {optouts.table} ORDER BY number")
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _utc(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def test_entries_are_added_once_normalised_and_their_first_reason_kept(optouts: SuppressionList) -> None:
    assert optouts.add([("333 123 4567", "STOP reply"), ("+393339876543", "complaint")], since=SINCE) == 2
    later = SINCE + dt.timedelta(days=3)
    # the same number written another way is the same entry: nothing new, the first reason stays
    assert optouts.add([("0039 333 1234567", "CANCELLAMI"), ("+393330000001", "STOP")], since=later) == 1
    rows = _rows(optouts)
    assert [r[:2] for r in rows] == [
        ("+393330000001", "STOP"),
        ("+393331234567", "STOP reply"),
        ("+393339876543", "complaint"),
    ]
    assert _utc(rows[1][2]) == dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)
    assert _utc(rows[0][2]) == later.astimezone(dt.UTC)


def test_suppressed_finds_numbers_in_any_written_form_in_batches(optouts: SuppressionList) -> None:
    many = [f"+39333{i:07d}" for i in range(BATCH + 20)]
    assert optouts.add([(n, "import") for n in many[::2]], since=SINCE) == len(many[::2])
    asked = [n.replace("+39", "0039") for n in many] + ["not a number", 3331234567]
    found = optouts.suppressed(asked)
    assert found == set(many[::2])  # E.164, across more than one IN batch
    assert optouts.suppressed([]) == set()


def test_ensure_is_repeatable_and_keeps_the_rows(optouts: SuppressionList) -> None:
    optouts.add([("+393331234567", "STOP")], since=SINCE)
    optouts.ensure()
    assert optouts.suppressed(["+393331234567"]) == {"+393331234567"}


def test_bad_input_adds_nothing_and_masks_the_number(optouts: SuppressionList) -> None:
    with pytest.raises(SmSendValidationError) as err:
        optouts.add([("+393331234567", "STOP"), ("12345678901234", "STOP")], since=SINCE)
    assert "12345678901234" not in str(err.value) and "Nothing was added" in str(err.value)
    with pytest.raises(ValueError, match="at most 64"):
        optouts.add([("+393331234567", "x" * 65)], since=SINCE)
    with pytest.raises(ValueError, match="timezone-aware"):
        optouts.add([("+393331234567", "STOP")], since=dt.datetime(2026, 1, 1))
    assert _rows(optouts) == []
    assert optouts.add([], since=SINCE) == 0


def test_a_table_name_that_is_not_a_plain_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="Invalid table"):
        SuppressionList(_sqlite(tmp_path, monkeypatch), "optouts; DROP TABLE x")
