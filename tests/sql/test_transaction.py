"""sql/transaction.py: one transaction per piece of work, quiet cleanup, driver errors without numbers."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest

from airflow_provider_smsend.sql.transaction import mask_digits, quietly, run_in_transaction, safe_error


def test_work_is_committed_and_its_result_returned(tmp_path: Any) -> None:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    run_in_transaction(conn, lambda cur: cur.execute("CREATE TABLE t (x INTEGER)"))
    assert run_in_transaction(conn, lambda cur: cur.execute("INSERT INTO t VALUES (1)").rowcount) == 1
    conn.close()
    other = sqlite3.connect(path)  # another connection sees it: committed
    assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()


def test_failed_work_is_rolled_back_and_its_error_raised(tmp_path: Any) -> None:
    conn = sqlite3.connect(tmp_path / "t.db")
    run_in_transaction(conn, lambda cur: cur.execute("CREATE TABLE t (x INTEGER)"))

    def work(cur: Any) -> None:
        cur.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("half done")

    with pytest.raises(RuntimeError, match="half done"):
        run_in_transaction(conn, work)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    conn.close()


def test_a_failing_rollback_does_not_hide_the_error() -> None:
    class Broken:
        def cursor(self) -> Any:
            return self

        def execute(self, sql: str) -> None:
            raise ValueError("the real error")

        def rollback(self) -> None:
            raise OSError("connection already gone")

        def close(self) -> None:
            raise OSError("connection already gone")

    with pytest.raises(ValueError, match="the real error"):
        run_in_transaction(Broken(), lambda cur: cur.execute("SELECT 1"))


def test_quietly_logs_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    def close() -> None:
        raise OSError("gone")

    with caplog.at_level(logging.DEBUG, logger="airflow_provider_smsend.sql.transaction"):
        quietly(close)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_safe_error_masks_numbers_and_keeps_one_line() -> None:
    exc = sqlite3.IntegrityError("UNIQUE constraint failed for +39 333 1234567\nsecond line")
    assert safe_error(exc) == "IntegrityError: UNIQUE constraint failed for ***"
    assert safe_error(None) == "error"
    assert len(safe_error(ValueError("x" * 1000))) < 230
    assert mask_digits("Key (id)=(+39 333 1234567) and 42") == "Key (id)=(***) and 42"  # short numbers stay
