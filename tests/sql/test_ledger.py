"""DbApiLedger: claims are conditional writes, records land only on the owner's rows, transient
database errors are retried on a new connection (a locked SQLite file, here)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from smsend_test_support.services import require_service

from airflow_provider_smsend.client.errors import SmSendLedgerError
from airflow_provider_smsend.client.ledger import ACCEPTED, REJECTED, SENDING, UNKNOWN, LedgerEntry
from airflow_provider_smsend.sql.ledger import DbApiLedger

JOB = "campaign/send/run-1/-1"
NUMBER = "+393331234567"


def ledger(path: Path, *, timeout: float = 5.0, retry_for: float = 60.0) -> DbApiLedger:
    return DbApiLedger(
        lambda: sqlite3.connect(path, timeout=timeout), dialect="sqlite", placeholder="?", retry_for=retry_for
    )


def test_one_owner_wins_a_new_item_and_a_stale_read_claims_nothing(tmp_path: Path) -> None:
    a, b = ledger(tmp_path / "l.db"), ledger(tmp_path / "l.db")
    assert a.claim(JOB, [NUMBER], owner="A") == {NUMBER}
    assert b.claim(JOB, [NUMBER], owner="B") == set()  # B read "no entry": the row exists now
    assert a.claim(JOB, [NUMBER], owner="A") == {NUMBER}  # repeating a committed claim is harmless
    entry = a.load(JOB)[NUMBER]
    assert (entry.state, entry.owner) == (SENDING, "A")


def test_a_claim_over_an_entry_holds_only_if_the_row_is_still_as_read(tmp_path: Path) -> None:
    a, b = ledger(tmp_path / "l.db"), ledger(tmp_path / "l.db")
    a.claim(JOB, [NUMBER], owner="A")
    a.record([LedgerEntry(JOB, NUMBER, REJECTED, error_code="queue_full", retryable=True)], owner="A")
    seen = a.load(JOB)
    assert b.claim(JOB, [NUMBER], owner="B", seen=seen) == {NUMBER}
    assert a.claim(JOB, [NUMBER], owner="A", seen=seen) == set()  # A read the same row: B changed it first


def test_records_land_on_the_owners_rows_and_an_accepted_one_is_never_dropped(tmp_path: Path) -> None:
    a, b = ledger(tmp_path / "l.db"), ledger(tmp_path / "l.db")
    a.claim(JOB, [NUMBER, "+393331234568"], owner="A")
    b.claim(JOB, [NUMBER], owner="B", seen=a.load(JOB))  # B takes the first over (resend_unknown)
    rejected = LedgerEntry(JOB, "+393331234568", REJECTED, error_code="x")
    assert b.record([rejected], owner="B") == [rejected]  # not B's row
    accepted = LedgerEntry(JOB, NUMBER, ACCEPTED, request_id="HTTP7", cost="0.0850")
    assert a.record([accepted], owner="A") == []  # A's answer came: the request id is kept
    rows = a.load(JOB)
    assert (rows[NUMBER].state, rows[NUMBER].request_id) == (ACCEPTED, "HTTP7")
    assert a.holders("HTTP7") == [rows[NUMBER]]


def test_a_locked_sqlite_file_is_waited_for(tmp_path: Path) -> None:
    """Another writer holds the file past sqlite3's busy timeout: the claim is tried again on a new
    connection (the writer lets go only then) and lands."""
    path = tmp_path / "l.db"
    ledger(path).claim(JOB, ["+393330000000"], owner="A")  # the table exists
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    connections: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        if connections:  # the first connection gave up on the lock: let go of it now
            locker.execute("COMMIT")
        connections.append(sqlite3.connect(path, timeout=0.2))
        return connections[-1]

    waiting = DbApiLedger(connect, dialect="sqlite", placeholder="?", retry_for=60)
    try:
        assert waiting.claim(JOB, [NUMBER], owner="A") == {NUMBER}
    finally:
        waiting.close()
        locker.close()
    assert len(connections) == 2  # one attempt refused by the lock, one on a new connection
    assert ledger(path).load(JOB)[NUMBER].state == SENDING


def test_a_database_that_stays_locked_is_a_clear_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    ledger(path).claim(JOB, ["+393330000000"], owner="A")
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SmSendLedgerError, match="could not claim items for 1 s") as raised:
            ledger(path, timeout=0.1, retry_for=1).claim(JOB, [NUMBER], owner="A")
    finally:
        locker.close()
    assert raised.value.retryable and NUMBER not in str(raised.value)


def test_a_table_of_version_0_2_gets_its_owner_column(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE smsend_send_ledger (job_key TEXT NOT NULL, item TEXT NOT NULL, state VARCHAR(16) NOT NULL, "
            "request_id TEXT, cost VARCHAR(32), error_code VARCHAR(64), error TEXT, retryable INTEGER NOT NULL "
            "DEFAULT 0, updated_at VARCHAR(40) NOT NULL, PRIMARY KEY (job_key, item))"
        )
        db.execute("INSERT INTO smsend_send_ledger VALUES (?, ?, 'accepted', 'HTTP1', '0.0850', NULL, NULL, 0, ?)",
                   (JOB, NUMBER, "2026-01-01T00:00:00+00:00"))  # fmt: skip
    old = ledger(path).load(JOB)[NUMBER]
    assert (old.state, old.request_id, old.owner) == (ACCEPTED, "HTTP1", None)
    assert ledger(path).claim(JOB, ["+393331234568"], owner="A") == {"+393331234568"}


def test_keys_longer_than_the_table_holds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 255"):
        ledger(tmp_path / "l.db").claim("j" * 256, [NUMBER], owner="A")


def _postgres() -> Any:
    import psycopg2

    return psycopg2.connect("postgresql://postgres@127.0.0.1:5432/test")


def _mariadb() -> Any:
    import MySQLdb

    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", database="test", charset="utf8mb4")


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable[[], Any], str]]:
    """(dialect, connect, placeholder) of a fresh ledger table's database."""
    if request.param == "sqlite":
        yield "sqlite", lambda: sqlite3.connect(tmp_path / "l.db"), "?"
        return
    connect = _postgres if request.param == "postgres" else _mariadb
    require_service(f"{request.param} on 127.0.0.1", lambda: connect().close())
    yield request.param, connect, "%s"


def test_sent_counts_are_one_indexed_query_per_500_numbers_of_the_campaign(
    database: tuple[str, Callable[[], Any], str],
) -> None:
    dialect, connect, placeholder = database
    table = f"smsend_ledger_{uuid.uuid4().hex[:10]}"
    store = DbApiLedger(connect, dialect=dialect, table=table, placeholder=placeholder)
    try:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        numbers = [f"+39333{i:07d}" for i in range(520)]
        for job in ("spring/run-1", "spring/run-2"):
            store.claim(job, numbers[::2], owner="A")
            store.record(
                [LedgerEntry(job, n, ACCEPTED, request_id="HTTP1", campaign="spring") for n in numbers[::4]]
                + [LedgerEntry(job, n, REJECTED, error_code="x", campaign="spring") for n in numbers[2::4]],
                owner="A",
            )
        counts = store.sent_counts("spring", numbers, since)
        assert counts == {n: 2 for n in numbers[::4]}
        assert store.sent_counts("autumn", numbers, since) == {}
        assert store.sent_counts("spring", numbers, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)) == {}
        assert store.load("spring/run-1")[numbers[0]].campaign == "spring"
        # unknown and sending (a retry's claim of a rejected row, killed before its record) may have
        # reached the phone: counted too
        store.claim("spring/run-3", [numbers[1]], owner="B")
        store.record([LedgerEntry("spring/run-3", numbers[1], UNKNOWN, campaign="spring")], owner="B")
        retry = store.load("spring/run-1")
        store.claim("spring/run-1", [numbers[2]], owner="C", seen=retry)
        assert store.load("spring/run-1")[numbers[2]].state == SENDING
        more = store.sent_counts("spring", numbers, since)
        assert more == {**counts, numbers[1]: 1, numbers[2]: 1}
        # the index on (campaign, item) exists
        store.close()
        DbApiLedger(connect, dialect=dialect, table=table, placeholder=placeholder).load(
            "x"
        )  # a second prepare
        index = f"{table}_campaign"
        probe = {
            "sqlite": f"SELECT name FROM sqlite_master WHERE type = 'index' AND name = '{index}'",
            "postgres": f"SELECT indexname FROM pg_indexes WHERE indexname = '{index}'",
            "mysql": f"SELECT index_name FROM information_schema.statistics WHERE index_name = '{index}'",
        }[dialect]
        conn = connect()
        try:
            cur = conn.cursor()
            cur.execute(probe)
            assert cur.fetchall()
        finally:
            conn.close()
    finally:
        store.close()
        conn = connect()
        try:
            conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
        finally:
            conn.close()
