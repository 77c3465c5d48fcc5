"""One transaction at a time over a DB-API 2 connection, for the ``sql`` room's own tables.

The send ledger (:mod:`~airflow_provider_smsend.sql.ledger`), the inbound cursor
(:mod:`~airflow_provider_smsend.sql.cursor`) and the suppression list
(:mod:`~airflow_provider_smsend.sql.suppression`) run each piece of work through
:func:`run_in_transaction`, clean up with :func:`quietly` and log a driver's error through
:func:`safe_error` (its digit runs, which may be phone numbers, masked).

Example::

    import sqlite3

    from airflow_provider_smsend.sql.transaction import run_in_transaction

    conn = sqlite3.connect(":memory:")
    run_in_transaction(conn, lambda cur: cur.execute("CREATE TABLE t (x INTEGER)"))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Runs of digits that may be phone numbers, in a driver's error message.
_DIGITS = re.compile(r"\+?\d[\d ]{5,}\d")


def run_in_transaction(conn: Any, work: Callable[[Any], T]) -> T:
    """Run ``work(cursor)`` on ``conn`` in one transaction: committed, or rolled back and re-raised.

    The caller owns the connection.
    """
    cur = conn.cursor()
    try:
        result = work(cur)
        conn.commit()
        return result
    except BaseException:
        quietly(conn.rollback)
        raise
    finally:
        quietly(cur.close)


def safe_error(exc: BaseException | None) -> str:
    """An error's type and first line, with digit runs that may be phone numbers masked."""
    if exc is None:
        return "error"
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {mask_digits(first)}"


def mask_digits(text: str) -> str:
    """``text`` with its runs of digits that may be phone numbers replaced by ``***``."""
    return _DIGITS.sub("***", text)


def quietly(func: Callable[[], object]) -> None:
    """Call ``func`` (a close or a rollback), ignoring its error: it must not hide the real one."""
    try:
        func()
    except Exception:  # closing or rolling back a broken connection must not hide the real error
        log.debug("SQL connection cleanup failed", exc_info=True)


__all__ = ["mask_digits", "quietly", "run_in_transaction", "safe_error"]
