"""The inbound SMS cursor: how far each inbound event trigger has fired, in a table of any SQL database.

One row per cursor (docs/gateway.md, "Inbound SMS as events")::

    cursor_key  VARCHAR(64) PRIMARY KEY   which trigger (a hash of its settings, or the user's name)
    last_id     BIGINT                    the highest receiveSms message id it has fired or passed
    updated_at  VARCHAR(40)               UTC, ISO 8601
    owner       VARCHAR(64)               the trigger run that moved it last

A trigger fires a message only after it has moved ``last_id`` from the value it read to the
message's id with a conditional update (:meth:`InboundCursor.advance`): two triggerers running the
same trigger (a failover while the old one still runs) cannot both fire a message, and a restarted
triggerer starts from the row, so nothing fired before fires again. No Airflow inside: ``connect``
returns a DB-API connection (a common-sql hook's ``get_conn``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_smsend.sql.transaction import quietly, run_in_transaction

if TYPE_CHECKING:
    from airflow_provider_smsend.sql.dialect import Dialect

T = TypeVar("T")

DEFAULT_CURSOR_TABLE = "smsend_inbound_cursor"
#: Widths of the key and owner columns.
KEY_LENGTH, OWNER_LENGTH = 64, 64


class InboundCursor:
    """Read, start and move inbound cursors in a cursor table (created if missing, never dropped).

    Every call runs on a new connection and every write is committed before the method returns. A
    failed call raises the driver's error: the trigger polls again.

    :param connect: returns a new DB-API connection (e.g. ``DbApiHook.get_conn``).
    :param dialect: the database's :class:`~airflow_provider_smsend.sql.dialect.Dialect` (its
        placeholder is the driver's).
    :param table: the table's name (``table`` or ``schema.table``; letters, digits and ``_``).

    Example::

        import sqlite3

        from airflow_provider_smsend.sql.cursor import InboundCursor
        from airflow_provider_smsend.sql.dialect import dialect_for

        cursor = InboundCursor(lambda: sqlite3.connect("cursor.db"), dialect=dialect_for("sqlite"))
        last = cursor.start("opt-outs", 0)  # 0, or where an earlier run got to
        if cursor.advance("opt-outs", last, 42, owner="triggerer-1"):
            ...  # message 42 is ours to fire
    """

    def __init__(
        self, connect: Callable[[], Any], *, dialect: Dialect, table: str = DEFAULT_CURSOR_TABLE
    ) -> None:
        self._connect = connect
        self._ready = False
        self.dialect = dialect
        self.table = dialect.quote(table)  # refuses anything but a plain (schema.)name

    def _call(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` on a new connection (the table made first, once), committed, then close it.

        A connection per call: a DB-API connection may be bound to the thread that opened it (SQLite's
        is), and the trigger's calls run on whichever thread is free.
        """
        conn = self._connect()
        try:
            if not self._ready:
                self._create(conn)
                self._ready = True
            return run_in_transaction(conn, work)
        except BaseException:
            self._ready = False  # the table may be what failed: make sure of it again next time
            raise
        finally:
            quietly(conn.close)

    def _create(self, conn: Any) -> None:
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if self.dialect.name == "mysql" else ""
        create = (
            f"CREATE TABLE IF NOT EXISTS {self.table} (cursor_key VARCHAR({KEY_LENGTH}) NOT NULL PRIMARY KEY, "
            f"last_id BIGINT NOT NULL, updated_at VARCHAR(40) NOT NULL, owner VARCHAR({OWNER_LENGTH})){suffix}"
        )
        try:
            run_in_transaction(conn, lambda cur: cur.execute(create))
        except Exception:
            # Two triggerers creating it at once: PostgreSQL's IF NOT EXISTS can still fail for the
            # loser on its catalog's unique index. The table is there: go on.
            run_in_transaction(conn, lambda cur: cur.execute(f"SELECT 1 FROM {self.table} WHERE 1 = 0"))

    def read(self, key: str) -> tuple[int, str | None] | None:
        """The cursor's ``(last_id, owner)``, or None if it has not been started."""
        p = self.dialect.marks(1)[0]

        def work(cur: Any) -> tuple[int, str | None] | None:
            cur.execute(f"SELECT last_id, owner FROM {self.table} WHERE cursor_key = {p}", (_check(key),))
            row = cur.fetchone()
            return None if row is None else (int(row[0]), None if row[1] is None else str(row[1]))

        return self._call(work)

    def start(self, key: str, last_id: int, *, owner: str | None = None) -> int:
        """Create the cursor at ``last_id`` unless it exists; return where it stands now."""
        insert = self.dialect.insert_if_absent_sql(
            self.table, ("cursor_key", "last_id", "updated_at", "owner"), ("cursor_key",)
        )
        generic = self.dialect.name not in ("postgres", "sqlite", "mysql")
        p = self.dialect.marks(1)[0]

        def work(cur: Any) -> int:
            params: tuple[Any, ...] = (_check(key), int(last_id), _now(), _owner(owner))
            cur.execute(insert, params + (key,) if generic else params)
            cur.execute(f"SELECT last_id FROM {self.table} WHERE cursor_key = {p}", (key,))
            return int(cur.fetchone()[0])

        return self._call(work)

    def advance(self, key: str, expected: int, new: int, *, owner: str) -> bool:
        """Move the cursor from ``expected`` to ``new`` if it still stands at ``expected``.

        :returns: True if this call moved it (the messages up to ``new`` are the caller's), False
            if another run moved it first (read it again).
        """
        return self._move(key, expected, new, owner=owner, own_only=False)

    def release(self, key: str, claimed: int, previous: int, *, owner: str) -> bool:
        """Give back a claim: move the cursor from ``claimed`` to ``previous`` if ``owner`` still holds it
        there (a trigger stopped between a claim and its event)."""
        return self._move(key, claimed, previous, owner=owner, own_only=True)

    def _move(self, key: str, expected: int, new: int, *, owner: str, own_only: bool) -> bool:
        p = self.dialect.marks(6 if own_only else 5)
        sql = (
            f"UPDATE {self.table} SET last_id = {p[0]}, updated_at = {p[1]}, owner = {p[2]} "
            f"WHERE cursor_key = {p[3]} AND last_id = {p[4]}" + (f" AND owner = {p[5]}" if own_only else "")
        )
        params: tuple[Any, ...] = (int(new), _now(), _owner(owner), _check(key), int(expected))
        if own_only:
            params += (_owner(owner),)

        def work(cur: Any) -> bool:
            cur.execute(sql, params)
            return bool(cur.rowcount == 1)

        return self._call(work)


def _check(key: str) -> str:
    if not key or len(key) > KEY_LENGTH:
        raise ValueError(f"A cursor key is 1 to {KEY_LENGTH} characters, got {key[:80]!r}.")
    return key


def _owner(owner: str | None) -> str | None:
    return None if owner is None else str(owner)[:OWNER_LENGTH]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


__all__ = ["DEFAULT_CURSOR_TABLE", "InboundCursor"]
