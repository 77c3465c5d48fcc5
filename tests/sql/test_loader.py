"""sql/loader.py on real databases: the MariaDB JSON_TABLE path against its executemany fallback,
PostgreSQL's binary COPY, values that need escaping, chunks whose columns are constant, tables that do
not fit, and one transaction per load, its frames pulled lazily."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from smsend_test_support.services import require_service

from airflow_provider_smsend.sql.dialect import dialect_for
from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE, CREDIT_SNAPSHOT_TABLE
from airflow_provider_smsend.sql.loader import (
    AdbcSession,
    SqlAlchemySession,
    TableLayoutError,
    TableLoader,
    constant,
)

MARIADB_URL = "mysql+mysqldb://root@127.0.0.1:3306/test?charset=utf8mb4"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TEXTS = ['Città "quoted", \\ back\\slash \t tab', "emoji 😀 ok", "NULL", "", "\\N", "x'y", None]
NOW = dt.datetime(2024, 7, 16, 8, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.fixture
def engine() -> Iterator[Any]:
    from sqlalchemy import create_engine

    def probe() -> None:
        create_engine(MARIADB_URL).connect().close()

    require_service("MariaDB on 127.0.0.1:3306 (with mysqlclient)", probe)
    made = create_engine(MARIADB_URL)
    yield made
    made.dispose()


@pytest.fixture
def table(engine: Any) -> Iterator[str]:
    name = f"smsend_sqlt_{uuid.uuid4().hex[:10]}"
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def _frame(rows: int, *, request_id: str = "HTTP1") -> Any:
    import pandas as pd
    import pyarrow as pa

    frame = pd.DataFrame(
        {
            "request_id": pd.array([request_id] * rows, dtype=pd.ArrowDtype(pa.string())),
            "id": pd.array(range(rows), dtype=pd.ArrowDtype(pa.int64())),
            "dest": pd.array([f"+39333{i:07d}" for i in range(rows)], dtype=pd.ArrowDtype(pa.string())),
            "status": pd.array(
                [(100, 200, 300)[i % 3] for i in range(rows)], dtype=pd.ArrowDtype(pa.int64())
            ),
            "status_text": pd.array(
                [TEXTS[i % len(TEXTS)] for i in range(rows)], dtype=pd.ArrowDtype(pa.string())
            ),
            "netcode": pd.array([None] * rows, dtype=pd.ArrowDtype(pa.string())),
        }
    )
    frame["report_type"] = constant("notify", rows, pa.string())
    frame["status_class"] = constant("pending", rows, pa.string())
    frame["loaded_at"] = constant(NOW, rows, pa.timestamp("us", tz="UTC"))
    frame["dag_run_id"] = constant(None, rows, pa.string())
    return frame


def _load(engine: Any, table: str, frames: list[Any], *, json_table: bool, chunk: int, **kwargs: Any) -> Any:
    session = SqlAlchemySession(engine, dialect_for("mysql"))
    session.JSON_CHUNK = chunk
    session._json_table_ok = json_table if not json_table else None  # None: ask the server
    try:
        loader = TableLoader(session, table, BATCH_STATUS_TABLE)
        loader.ensure_table(unique_key=kwargs.get("mode") == "upsert")
        return loader.load(frames, **{"mode": "append", **kwargs})
    finally:
        session.close()


def _rows(engine: Any, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY request_id, id").fetchall()
        ]


def test_json_table_and_executemany_store_the_same_rows(engine: Any, table: str) -> None:
    frames = [_frame(10), _frame(1, request_id="HTTP2")]  # chunks of 3: the last one has a single row
    _load(engine, table, frames, json_table=True, chunk=3)
    by_json = _rows(engine, table)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {table}")
    _load(engine, table, frames, json_table=False, chunk=3)

    assert by_json == _rows(engine, table) and len(by_json) == 11
    texts = [r[6] for r in by_json[:7]]
    assert texts == TEXTS  # quotes, backslashes, tabs, emoji, 'NULL', '\\N', NULL: all as they were
    assert {r[8] for r in by_json} == {NOW.replace(tzinfo=None)}  # UTC, microseconds kept


@pytest.mark.parametrize(
    ("balances", "snapshot_date"),
    [
        (
            [(1, Decimal("0.0001")), (2, Decimal("99999999999999.9999")), (3, Decimal("-12.3400"))],
            dt.date(2024, 7, 16),
        ),
        # one value in the whole frame: money and the date come from the statement's one-row document
        ([(u, Decimal("99999999999999.9999")) for u in (1, 2, 3)], dt.date(2024, 2, 29)),
    ],
    ids=["varying", "one_value"],
)
def test_money_and_dates_are_exact_through_json(
    engine: Any, table: str, balances: list[tuple[int, Decimal]], snapshot_date: dt.date
) -> None:
    import pandas as pd
    import pyarrow as pa

    from airflow_provider_smsend.client.reports import credit_snapshot_frame

    frame = credit_snapshot_frame(balances, snapshot_date=snapshot_date)
    frame["loaded_at"] = constant(NOW, len(frame), pa.timestamp("us", tz="UTC"))
    frame["dag_run_id"] = pd.array(["run"] * len(frame), dtype=pd.ArrowDtype(pa.string()))
    session = SqlAlchemySession(engine, dialect_for("mysql"))
    try:
        loader = TableLoader(session, table, CREDIT_SNAPSHOT_TABLE)
        loader.ensure_table()
        loader.load([frame], mode="append")
    finally:
        session.close()
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            f"SELECT u_id, credit, snapshot_date FROM {table} ORDER BY u_id"
        ).fetchall()
    assert [tuple(r) for r in stored] == [(u, c, snapshot_date) for u, c in balances]


def test_columns_with_one_value_in_the_frame_are_not_given_to_pandas(engine: Any, table: str) -> None:
    import json

    session = SqlAlchemySession(engine, dialect_for("mysql"))
    sent: list[tuple[list[str], list[str]]] = []
    insert = session._insert_json

    def spy(pd_table: Any, conn: Any, keys: list[str], data_iter: Any) -> int:
        count = insert(pd_table, conn, keys, data_iter)
        sent.append((list(keys), []))
        return count

    send = session._send
    session._insert_json = spy  # type: ignore[method-assign]
    session._send = lambda sql, documents: (sent.append(([], documents)), send(sql, documents))[1]  # type: ignore[method-assign]
    try:
        loader = TableLoader(session, table, BATCH_STATUS_TABLE)
        loader.ensure_table()
        loader.load([_frame(10)], mode="append")
    finally:
        session.close()

    # pandas turns every value of the columns it is given into a Python object: only the four that
    # vary reach it; request_id, report_type, status_class, netcode, loaded_at and dag_run_id have
    # one value in the frame and go in a one-row document
    (_, documents), (keys, _) = sent
    assert keys == ["id", "dest", "status", "status_text"]
    rows, same = (json.loads(d) for d in documents)
    assert len(rows) == 10 and {len(r) for r in rows} == {4}
    assert len(same) == 1 and len(same[0]) == 6 and "HTTP1" in same[0] and "notify" in same[0]
    stored = _rows(engine, table)
    assert [(r[0], r[1], r[5], r[7], r[8], r[9]) for r in stored] == [
        ("HTTP1", "notify", "pending", None, NOW.replace(tzinfo=None), None)
    ] * 10
    assert [r[2] for r in stored] == list(range(10))


def test_a_failing_chunk_rolls_the_whole_load_back(engine: Any, table: str) -> None:
    good, bad = _frame(8), _frame(4, request_id="HTTP3")
    bad["dest"] = bad["dest"].str.pad(40, fillchar="9")  # longer than VARCHAR(32): the server refuses
    with pytest.raises(Exception, match="dest"):
        _load(engine, table, [good, bad], json_table=True, chunk=3)
    assert _rows(engine, table) == []


def test_upsert_through_json_keeps_the_last_row_of_a_key(engine: Any, table: str) -> None:
    first = _frame(5)
    _load(engine, table, [first], json_table=True, chunk=2, mode="upsert")
    second = _frame(5)
    second["status"] = second["status"] * 0 + 200
    _load(engine, table, [second], json_table=True, chunk=2, mode="upsert")
    assert [r[4] for r in _rows(engine, table)] == [200] * 5


def test_a_table_name_with_capitals_loads(engine: Any) -> None:
    """pandas looks the table up again after the last chunk: the chunk in flight must be done by then."""
    name = f"Smsend_Caps_{uuid.uuid4().hex[:8]}"
    try:
        _load(engine, name, [_frame(12)], json_table=True, chunk=5)
        assert len(_rows(engine, name)) == 12
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{name}`")


def test_chunk_size_below_the_json_chunk_is_honoured(
    engine: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = SqlAlchemySession._send

    def counting(self: SqlAlchemySession, sql: str, documents: list[str]) -> None:
        import json

        sizes.append(len(json.loads(documents[0])))
        original(self, sql, documents)

    monkeypatch.setattr(SqlAlchemySession, "_send", counting)
    session = SqlAlchemySession(engine, dialect_for("mysql"), chunk_size=4)
    try:
        loader = TableLoader(session, table, BATCH_STATUS_TABLE)
        loader.ensure_table()
        loader.load([_frame(10)], mode="append")
    finally:
        session.close()
    assert sizes == [4, 4, 2] and len(_rows(engine, table)) == 10


def _postgres_session() -> AdbcSession:
    import adbc_driver_postgresql.dbapi

    def probe() -> None:
        adbc_driver_postgresql.dbapi.connect(POSTGRES_URL).close()

    require_service("PostgreSQL on 127.0.0.1:5432", probe)
    return AdbcSession(adbc_driver_postgresql.dbapi.connect(POSTGRES_URL), dialect_for("postgres"))


def test_a_postgres_table_made_by_hand_with_other_integer_widths_loads() -> None:
    """A hand-made wide table may hold status as BIGINT and times as TIMESTAMP: the binary COPY is cast."""
    name = f"smsend_hand_{uuid.uuid4().hex[:8]}"
    session = _postgres_session()
    try:
        session.execute(
            f"CREATE TABLE {name} (request_id TEXT, report_type TEXT, id BIGINT, dest TEXT, status BIGINT, "
            "status_class TEXT, status_text TEXT, netcode TEXT, loaded_at TIMESTAMP, dag_run_id TEXT, extra INT)"
        )
        session.commit()
        result = TableLoader(session, name, BATCH_STATUS_TABLE).load([_frame(5)], mode="append")
        rows = session.query(f"SELECT status, loaded_at FROM {name} ORDER BY id")
        assert result.rows == 5 and rows[0] == (100, NOW.replace(tzinfo=None))
    finally:
        session.rollback()
        session.execute(f"DROP TABLE IF EXISTS {name}")
        session.commit()
        session.close()


def _sqlite_session(path: Any) -> AdbcSession:
    import adbc_driver_sqlite.dbapi

    return AdbcSession(adbc_driver_sqlite.dbapi.connect(str(path)), dialect_for("sqlite"))


def _snapshot(u_ids: Any, loaded_at: Any = NOW) -> Any:
    import pyarrow as pa

    from airflow_provider_smsend.client.reports import credit_snapshot_frame

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


def test_quotes_escapes_and_non_ascii_round_trip_on_postgres() -> None:
    """ADBC's binary COPY: tabs, backslashes, quotes and non-ASCII text stored as the report had them."""
    import psycopg
    import pyarrow as pa

    from airflow_provider_smsend.client.reports import read_batch_status

    text = "id,dest,status,status_text\r\n" + "".join(
        f'{i},+39333{3000000 + i:07d},100,"Wait\\N\ting, ""quoted""\u00e8"\r\n' for i in range(1, 21)
    )
    frame = read_batch_status([("R", text.encode(), None)], "notify")
    wide, money = f"smsend_pgq_{uuid.uuid4().hex[:10]}", f"smsend_pgm_{uuid.uuid4().hex[:10]}"
    session = _postgres_session()
    try:
        wide_loader = TableLoader(session, wide, BATCH_STATUS_TABLE)
        wide_loader.ensure_table()
        frame["report_type"] = constant("notify", len(frame), pa.string())
        frame["status_class"] = constant("pending", len(frame), pa.string())
        frame["loaded_at"] = constant(NOW, len(frame), pa.timestamp("us", tz="UTC"))
        frame["dag_run_id"] = constant(None, len(frame), pa.string())
        result = wide_loader.load(
            [frame], mode="replace", scope={"request_id": ["R"], "report_type": "notify"}
        )
        money_loader = TableLoader(session, money, CREDIT_SNAPSHOT_TABLE)
        money_loader.ensure_table()
        snap = _snapshot([1, 2])
        snap["credit"] = [Decimal("0.0001"), Decimal("123456.7891")]
        money_loader.load([snap], mode="append")
        with psycopg.connect(POSTGRES_URL) as conn:
            rows = conn.execute(f"SELECT status_text, netcode, loaded_at FROM {wide} ORDER BY id").fetchall()
            credits = conn.execute(f"SELECT credit FROM {money} ORDER BY u_id").fetchall()
    finally:
        session.rollback()
        for name in (wide, money):
            session.execute(f"DROP TABLE IF EXISTS {name}")
        session.commit()
        session.close()

    assert result.method == "adbc" and result.rows == 20
    assert rows[0] == ('Wait\\N\ting, "quoted"\u00e8', None, NOW) and len(set(rows)) == 1
    assert credits == [(Decimal("0.0001"),), (Decimal("123456.7891"),)]


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


def test_only_a_broken_unique_key_is_told_as_one(tmp_path: Any) -> None:
    """The databases' own words decide, never the statement the driver quotes in its error: an
    unrelated failure of CREATE UNIQUE INDEX keeps its own error."""
    import sqlite3

    from airflow_provider_smsend.sql.loader import _duplicate_keys_refused

    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (k INTEGER, dest TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "+393331234567"), (1, "+393331234567")])
    with pytest.raises(TableLayoutError, match=r"UNIQUE constraint failed: t\.k\)") as info:
        with _duplicate_keys_refused("t", ["k"]):
            conn.execute("CREATE UNIQUE INDEX t_uk ON t (k)")
    assert "replace" in str(info.value) and "3331234567" not in str(info.value)
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        with _duplicate_keys_refused("t", ["k"]):
            conn.execute("CREATE UNIQUE INDEX t_uk ON t (no_such_column)")
    conn.close()
