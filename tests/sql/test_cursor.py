"""InboundCursor on SQLite, PostgreSQL and MariaDB through their common-sql hooks: a cursor starts
once (a second start keeps it), moves only from the value read (two runs: one wins), a claim is
given back only by its owner, a bad key is refused, a failed call makes sure of the table again."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smsend_test_support.services import require_service

from airflow_provider_smsend.sql.cursor import InboundCursor
from airflow_provider_smsend.sql.dialect import dialect_for

POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URI = "mysql://root@127.0.0.1:3306/test"


def _hook(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    if kind == "sqlite":
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        monkeypatch.setenv("AIRFLOW_CONN_CURSOR_SQLITE", f"sqlite://{tmp_path / 'c.db'}")
        return SqliteHook(sqlite_conn_id="cursor_sqlite"), "sqlite"
    if kind == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        monkeypatch.setenv("AIRFLOW_CONN_CURSOR_PG", POSTGRES_URI)
        hook = PostgresHook(postgres_conn_id="cursor_pg")
        require_service("PostgreSQL on 127.0.0.1:5432", lambda: hook.get_conn().close())
        return hook, "postgres"
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    monkeypatch.setenv("AIRFLOW_CONN_CURSOR_MARIADB", MARIADB_URI)
    hook = MySqlHook(mysql_conn_id="cursor_mariadb")
    require_service("MariaDB on 127.0.0.1:3306", lambda: hook.get_conn().close())
    return hook, "mysql"


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def pair(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[InboundCursor, InboundCursor]]:
    """Two cursors on one table (two triggerers), dropped afterwards."""
    hook, conn_type = _hook(request.param, tmp_path, monkeypatch)
    table = f"smsend_cur_{uuid.uuid4().hex[:10]}"
    dialect = dialect_for(conn_type, placeholder=hook.placeholder)
    a = InboundCursor(hook.get_conn, dialect=dialect, table=table)
    b = InboundCursor(hook.get_conn, dialect=dialect, table=table)
    yield a, b
    conn = hook.get_conn()
    conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    conn.commit()
    conn.close()


def test_a_cursor_starts_once_and_one_of_two_runs_moves_it(pair: tuple[InboundCursor, InboundCursor]) -> None:
    a, b = pair
    assert a.read("k") is None
    assert a.start("k", 7, owner="A") == 7
    assert b.start("k", 0, owner="B") == 7  # started already: kept
    assert a.advance("k", 7, 8, owner="A") is True
    assert b.advance("k", 7, 8, owner="B") is False  # B read 7: A moved it first
    assert b.read("k") == (8, "A")
    assert a.start("other", 0) == 0 and a.read("k") == (8, "A")  # cursors are independent


def test_a_claim_is_given_back_only_by_its_owner_and_only_where_it_stands(
    pair: tuple[InboundCursor, InboundCursor],
) -> None:
    a, b = pair
    a.start("k", 3)
    assert a.advance("k", 3, 5, owner="A")
    assert b.release("k", 5, 3, owner="B") is False  # not B's claim
    assert a.release("k", 5, 3, owner="A") is True
    assert a.read("k") == (3, "A")
    assert b.advance("k", 3, 9, owner="B")
    assert a.release("k", 5, 3, owner="A") is False  # it moved on since


def test_a_bad_key_or_table_is_refused(tmp_path: Path) -> None:
    cursor = InboundCursor(lambda: sqlite3.connect(tmp_path / "c.db"), dialect=dialect_for("sqlite"))
    with pytest.raises(ValueError, match="1 to 64"):
        cursor.start("x" * 65, 0)
    with pytest.raises(ValueError, match="letters, digits"):
        InboundCursor(lambda: sqlite3.connect(tmp_path / "c.db"), dialect=dialect_for("sqlite"), table="a;b")


def test_each_call_has_its_own_connection_and_a_vanished_table_is_made_again(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        opened.append(sqlite3.connect(tmp_path / "c.db"))
        return opened[-1]

    cursor = InboundCursor(connect, dialect=dialect_for("sqlite"))
    cursor.start("k", 1)
    with sqlite3.connect(tmp_path / "c.db") as other:
        other.execute("DROP TABLE smsend_inbound_cursor")  # the table vanished under it
    with pytest.raises(sqlite3.OperationalError):
        cursor.read("k")
    assert cursor.start("k", 4) == 4  # the table was made again
    assert len(opened) == 3
    with pytest.raises(sqlite3.ProgrammingError):
        opened[0].execute("SELECT 1")  # closed after its call
