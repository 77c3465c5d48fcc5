"""The send ledger's SQL storage: a table in any SQL database, through a DB-API 2 connection.

The ledger's states and protocol live with the gateway logic
(:mod:`airflow_provider_smsend.client.ledger`); this module only stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from airflow_provider_smsend.client.ledger import DEFAULT_TABLE, SENDING, LedgerEntry, _now


class DbApiLedger:
    """A ledger table in any SQL database, through a DB-API 2 connection.

    The table is created if missing (never dropped). Every mark and record is committed before the
    method returns, so it survives the worker being killed.

    :param connect: returns a new DB-API connection (e.g. ``DbApiHook.get_conn``).
    :param dialect: ``sqlite``, ``postgres``, ``mysql`` or another name (generic SQL types).
    :param table: the ledger table's name (letters, digits, ``_`` and ``.`` only).
    :param placeholder: the driver's parameter marker (``%s`` or ``?``).

    Example::

        import sqlite3
        ledger = DbApiLedger(lambda: sqlite3.connect("ledger.db"), dialect="sqlite", placeholder="?")
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        dialect: str,
        table: str = DEFAULT_TABLE,
        placeholder: str = "%s",
    ) -> None:
        if not table.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"Invalid ledger table name {table!r}: use letters, digits, '_' and '.'.")
        self._connect = connect
        self._conn: Any = None
        self.dialect = dialect
        self.table = table
        self.placeholder = placeholder

    @property
    def connection(self) -> Any:
        """The DB-API connection, opened (and the table created) on first use."""
        if self._conn is None:
            self._conn = self._connect()
            if self.dialect == "sqlite":
                cur = self._conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.close()
            self._create_table()
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _create_table(self) -> None:
        text = "TEXT" if self.dialect in ("sqlite", "postgres") else "VARCHAR(1000)"
        key = "TEXT" if self.dialect in ("sqlite", "postgres") else "VARCHAR(255)"
        ddl = (
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            f"job_key {key} NOT NULL, item {key} NOT NULL, state VARCHAR(16) NOT NULL, "
            f"request_id {key}, cost VARCHAR(32), error_code VARCHAR(64), error {text}, "
            f"retryable INTEGER NOT NULL DEFAULT 0, updated_at VARCHAR(40) NOT NULL, "
            f"PRIMARY KEY (job_key, item))"
        )
        self._execute([(ddl, None)])

    def _execute(self, statements: list[tuple[str, list[tuple[Any, ...]] | None]]) -> list[tuple[Any, ...]]:
        conn = self.connection
        cur = conn.cursor()
        rows: list[tuple[Any, ...]] = []
        try:
            for sql, params in statements:
                if params is None:
                    cur.execute(sql)
                elif params:
                    cur.executemany(sql, params)
                if cur.description is not None:
                    rows.extend(cur.fetchall())
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            cur.close()
        return rows

    def load(self, job_key: str) -> dict[str, LedgerEntry]:
        return {e.item: e for e in self._query(f"WHERE job_key = {self.placeholder}", (job_key,))}

    def entries(self, state: str | None = None) -> list[LedgerEntry]:
        """Every entry of every job (optionally of one ``state``): for audits and reconciliations."""
        return self._query(f"WHERE state = {self.placeholder}", (state,)) if state else self._query("", ())

    def _query(self, where: str, params: tuple[Any, ...]) -> list[LedgerEntry]:
        rows = self._select(
            f"SELECT job_key, item, state, request_id, cost, error_code, error, retryable, updated_at "
            f"FROM {self.table} {where}",
            params,
        )
        return [LedgerEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8]) for r in rows]

    def mark_sending(self, job_key: str, items: Iterable[str]) -> None:
        items = list(items)
        if not items:
            return
        existing = set(self._existing(job_key, items))
        now = _now()
        p = self.placeholder
        updates = [(SENDING, now, job_key, item) for item in items if item in existing]
        inserts = [(job_key, item, SENDING, now) for item in items if item not in existing]
        self._execute(
            [
                (
                    f"UPDATE {self.table} SET state = {p}, request_id = NULL, cost = NULL, error_code = NULL, "
                    f"error = NULL, retryable = 0, updated_at = {p} WHERE job_key = {p} AND item = {p}",
                    updates,
                ),
                (
                    f"INSERT INTO {self.table} (job_key, item, state, updated_at) VALUES ({p}, {p}, {p}, {p})",
                    inserts,
                ),
            ]
        )

    def _existing(self, job_key: str, items: list[str]) -> list[str]:
        p = self.placeholder
        found: list[str] = []
        for start in range(0, len(items), 500):
            part = items[start : start + 500]
            marks = ", ".join([p] * len(part))
            rows = self._select(
                f"SELECT item FROM {self.table} WHERE job_key = {p} AND item IN ({marks})", (job_key, *part)
            )
            found.extend(r[0] for r in rows)
        return found

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = self.connection
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            rows = list(cur.fetchall())
            conn.commit()
        finally:
            cur.close()
        return rows

    def record(self, entries: Iterable[LedgerEntry]) -> None:
        p = self.placeholder
        params = [
            (
                e.state,
                e.request_id,
                e.cost,
                e.error_code,
                (e.error or "")[:1000] or None,
                1 if e.retryable else 0,
                e.updated_at or _now(),
                e.job_key,
                e.item,
            )
            for e in entries
        ]
        if not params:
            return
        self._execute(
            [
                (
                    f"UPDATE {self.table} SET state = {p}, request_id = {p}, cost = {p}, error_code = {p}, "
                    f"error = {p}, retryable = {p}, updated_at = {p} WHERE job_key = {p} AND item = {p}",
                    params,
                )
            ]
        )
