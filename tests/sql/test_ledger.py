"""DbApiLedger: claims are conditional writes, records land only on the owner's rows, transient
database errors are retried on a new connection (a locked SQLite file, here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from airflow_provider_smsend.client.errors import SmSendLedgerError
from airflow_provider_smsend.client.ledger import ACCEPTED, REJECTED, SENDING, LedgerEntry
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
