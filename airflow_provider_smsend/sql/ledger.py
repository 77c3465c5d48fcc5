"""The send ledger's SQL storage: a table in any SQL database, through a DB-API 2 connection.

The ledger's states and protocol live with the gateway logic
(:mod:`airflow_provider_smsend.client.ledger`); this module only stores them, with conditional
writes (claims) so that two tries running at once never both own an item, and with retries:
a locked SQLite file, a deadlock or a dropped connection is retried with backoff (a new
connection each time) for ``retry_for`` seconds before :class:`SmSendLedgerError` is raised.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from airflow_provider_smsend.client.errors import SmSendLedgerError
from airflow_provider_smsend.client.ledger import (
    ACCEPTED,
    COUNTED,
    DEFAULT_TABLE,
    SENDING,
    LedgerEntry,
    _now,
    stamp,
)
from airflow_provider_smsend.sql.dialect import Dialect
from airflow_provider_smsend.sql.transaction import quietly, run_in_transaction, safe_error

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Longest job key, item and owner the table holds (VARCHAR(255) keys on MySQL).
MAX_KEY, MAX_OWNER = 255, 64
_COLUMNS = "job_key, item, state, request_id, cost, error_code, error, retryable, updated_at, owner, campaign"
#: Driver errors that a new attempt (on a new connection) may get past, by class name: every
#: DB-API driver names them so (sqlite3, psycopg, MySQLdb, ...).
_TRANSIENT = frozenset({"OperationalError", "InterfaceError"})


class DbApiLedger:
    """A ledger table in any SQL database, through a DB-API 2 connection.

    The table is created if missing (never dropped); a table made by an earlier version gets its
    ``owner`` and ``campaign`` columns added. Every claim and record is committed before the
    method returns, so it survives the worker being killed. An index on ``(campaign, item)``
    serves :meth:`sent_counts` (the frequency cap).

    :param connect: returns a new DB-API connection (e.g. ``DbApiHook.get_conn``).
    :param dialect: ``sqlite``, ``postgres``, ``mysql`` or another name (generic SQL types).
    :param table: the ledger table's name (letters, digits, ``_`` and ``.`` only).
    :param placeholder: the driver's parameter marker (``%s`` or ``?``).
    :param retry_for: seconds during which a failed read or write is tried again (on a new
        connection, with backoff from 0.2 s to 5 s) before :class:`SmSendLedgerError`.

    Example::

        import sqlite3
        ledger = DbApiLedger(lambda: sqlite3.connect("ledger.db"), dialect="sqlite", placeholder="?")
        mine = ledger.claim("dag/task/run/-1", ["+393331234567"], owner=new_owner("try 1"))
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        dialect: str,
        table: str = DEFAULT_TABLE,
        placeholder: str = "%s",
        retry_for: float = 60.0,
    ) -> None:
        if not table.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"Invalid ledger table name {table!r}: use letters, digits, '_' and '.'.")
        self._connect = connect
        self._conn: Any = None
        self.dialect = dialect
        self.table = table
        self.placeholder = placeholder
        self.retry_for = retry_for
        self._sql = Dialect(name=dialect, placeholder=placeholder)

    # ----------------------------------------------------------------- connection

    @property
    def connection(self) -> Any:
        """The DB-API connection, opened (and the table made ready) on first use."""
        if self._conn is None:
            conn = self._connect()
            try:
                self._prepare(conn)
            except BaseException:
                quietly(conn.close)
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            quietly(conn.close)

    def _prepare(self, conn: Any) -> None:
        text = "TEXT" if self.dialect in ("sqlite", "postgres") else "VARCHAR(1000)"
        key = "TEXT" if self.dialect in ("sqlite", "postgres") else f"VARCHAR({MAX_KEY})"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            f"job_key {key} NOT NULL, item {key} NOT NULL, state VARCHAR(16) NOT NULL, "
            f"request_id {key}, cost VARCHAR(32), error_code VARCHAR(64), error {text}, "
            f"retryable INTEGER NOT NULL DEFAULT 0, updated_at VARCHAR(40) NOT NULL, "
            f"owner VARCHAR({MAX_OWNER}), campaign {key}, PRIMARY KEY (job_key, item))"
        ]
        if self.dialect == "sqlite":
            statements.insert(0, "PRAGMA journal_mode=WAL")
        for sql in statements:
            try:
                _execute(conn, sql)
            except Exception:
                # Two tries creating the table at once: PostgreSQL's CREATE TABLE IF NOT EXISTS can
                # still fail on its catalog's unique index for the loser. The table is there: go on.
                if not sql.startswith("CREATE") or not _works(
                    conn, f"SELECT 1 FROM {self.table} WHERE 1 = 0"
                ):
                    raise
        # Tables of earlier versions: 0.2 had no owner column, 0.3 no campaign column.
        for column, kind in (("owner", f"VARCHAR({MAX_OWNER})"), ("campaign", key)):
            probe = f"SELECT {column} FROM {self.table} WHERE 1 = 0"
            if not _works(conn, probe):
                try:
                    _execute(conn, f"ALTER TABLE {self.table} ADD COLUMN {column} {kind}")
                except Exception:  # a twin try added it first
                    _execute(conn, probe)
        index = Dialect(name=self.dialect, placeholder=self.placeholder).index_name(self.table, "campaign")
        if self.dialect == "mysql":
            create = f"CREATE INDEX {index} ON {self.table} (campaign, item)"
        else:
            schema = (
                f"{self.table.rsplit('.', 1)[0]}." if "." in self.table and self.dialect == "sqlite" else ""
            )
            on = self.table.rsplit(".", 1)[-1] if schema else self.table
            create = f"CREATE INDEX IF NOT EXISTS {schema}{index} ON {on} (campaign, item)"
        if not _works(conn, create) and self.dialect != "mysql":  # MySQL has no IF NOT EXISTS: it exists
            log.warning(
                "Could not create the ledger's index on (campaign, item) of %s: the frequency cap's counts "
                "run without it.",
                self.table,
            )

    def _transaction(self, what: str, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one transaction, committed; transient failures are tried again."""
        import tenacity

        def transient(exc: BaseException) -> bool:
            names = {cls.__name__ for cls in type(exc).__mro__}
            return bool(names & _TRANSIENT) or (self.dialect == "generic" and "IntegrityError" in names)

        def reset(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "The send ledger could not %s (%s), attempt %d; trying again on a new connection in %.1f s.",
                what,
                safe_error(exc),
                state.attempt_number,
                state.next_action.sleep if state.next_action is not None else 0.0,
            )
            self.close()

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.retry_for),
            wait=tenacity.wait_exponential(multiplier=0.2, max=5),
            retry=tenacity.retry_if_exception(transient),
            before_sleep=reset,
            reraise=True,
        )
        try:
            return retrying(lambda: run_in_transaction(self.connection, work))
        except SmSendLedgerError:
            raise
        except Exception as exc:
            if not transient(exc):
                raise
            raise SmSendLedgerError(
                f"The send ledger (table {self.table!r}, {self.dialect}) could not {what} for "
                f"{self.retry_for:g} s: {safe_error(exc)}. Check the ledger's database; a retry of the task "
                "resumes from what the ledger holds."
            ) from exc

    # ----------------------------------------------------------------- reads

    def load(self, job_key: str) -> dict[str, LedgerEntry]:
        return {e.item: e for e in self._query("read the job's entries", "job_key", job_key)}

    def entries(self, state: str | None = None) -> list[LedgerEntry]:
        """Every entry of every job (optionally of one ``state``): for audits and reconciliations."""
        if state:
            return self._query("read the entries", "state", state)
        return self._transaction(
            "read the entries", lambda cur: _entries(cur, f"SELECT {_COLUMNS} FROM {self.table}", ())
        )

    def holders(self, request_id: str) -> list[LedgerEntry]:
        return self._query("look up a request id", "request_id", request_id)

    def sent_counts(self, campaign: str, items: Iterable[str], since: dt.datetime) -> dict[str, int]:
        items = list(dict.fromkeys(items))
        start, p = stamp(since), self.placeholder

        def work(cur: Any) -> dict[str, int]:
            counts: dict[str, int] = {}
            for first in range(0, len(items), 500):
                part = items[first : first + 500]
                marks = ", ".join([p] * len(part))
                states = ", ".join([p] * len(COUNTED))
                cur.execute(
                    f"SELECT item, COUNT(*) FROM {self.table} WHERE campaign = {p} AND item IN ({marks}) "
                    f"AND state IN ({states}) AND updated_at >= {p} GROUP BY item",
                    (campaign, *part, *COUNTED, start),
                )
                counts.update((str(row[0]), int(row[1])) for row in cur.fetchall())
            return counts

        return self._transaction("count the campaign's sends", work) if items else {}

    def _query(self, what: str, column: str, value: str) -> list[LedgerEntry]:
        sql = f"SELECT {_COLUMNS} FROM {self.table} WHERE {column} = {self.placeholder}"
        return self._transaction(what, lambda cur: _entries(cur, sql, (value,)))

    # ----------------------------------------------------------------- writes

    def claim(
        self,
        job_key: str,
        items: Iterable[str],
        *,
        owner: str,
        seen: Mapping[str, LedgerEntry] | None = None,
    ) -> set[str]:
        items = list(dict.fromkeys(items))
        if not items:
            return set()
        _check_lengths(job_key, items, owner)
        seen = seen or {}
        p = self.placeholder
        key = ("job_key", "item")
        insert = self._sql.insert_if_absent_sql(
            self.table, ("job_key", "item", "state", "updated_at", "owner"), key
        )
        generic = self.dialect not in ("postgres", "sqlite", "mysql")
        update = (
            f"UPDATE {self.table} SET state = {p}, request_id = NULL, cost = NULL, error_code = NULL, "
            f"error = NULL, retryable = 0, updated_at = {p}, owner = {p} "
            f"WHERE job_key = {p} AND item = {p} AND state = {p} AND updated_at = {p} AND COALESCE(owner, '') = {p}"
        )

        def work(cur: Any) -> set[str]:
            now = _now()
            for item in items:
                before = seen.get(item)
                if before is None:
                    params: tuple[Any, ...] = (job_key, item, SENDING, now, owner)
                    cur.execute(insert, params + (job_key, item) if generic else params)
                else:
                    cur.execute(
                        update,
                        (
                            SENDING,
                            now,
                            owner,
                            job_key,
                            item,
                            before.state,
                            before.updated_at,
                            before.owner or "",
                        ),
                    )
            # What this owner holds now (also right when an earlier attempt's commit went through).
            mine: set[str] = set()
            for start in range(0, len(items), 500):
                part = items[start : start + 500]
                marks = ", ".join([p] * len(part))
                cur.execute(
                    f"SELECT item FROM {self.table} WHERE job_key = {p} AND owner = {p} AND state = {p} "
                    f"AND item IN ({marks})",
                    (job_key, owner, SENDING, *part),
                )
                mine.update(row[0] for row in cur.fetchall())
            return mine

        return self._transaction("claim items", work)

    def record(self, entries: Iterable[LedgerEntry], *, owner: str) -> list[LedgerEntry]:
        entries = list(entries)
        if not entries:
            return []
        p = self.placeholder
        sets = (
            f"UPDATE {self.table} SET state = {p}, request_id = {p}, cost = {p}, error_code = {p}, error = {p}, "
            f"retryable = {p}, updated_at = {p}, owner = {p}, campaign = COALESCE({p}, campaign) "
            f"WHERE job_key = {p} AND item = {p}"
        )
        own, adopt = f"{sets} AND owner = {p}", f"{sets} AND state <> {p}"

        def work(cur: Any) -> list[LedgerEntry]:
            lost: list[LedgerEntry] = []
            for e in entries:
                values = (
                    e.state,
                    e.request_id,
                    e.cost,
                    e.error_code,
                    (e.error or "")[:1000] or None,
                    1 if e.retryable else 0,
                    e.updated_at or _now(),
                    owner,
                    e.campaign,
                    e.job_key,
                    e.item,
                )
                cur.execute(own, (*values, owner))
                if cur.rowcount == 1:
                    continue
                if e.state == ACCEPTED:  # a request id received is never dropped
                    cur.execute(adopt, (*values, ACCEPTED))
                    if cur.rowcount == 1:
                        continue
                lost.append(e)
            return lost

        return self._transaction("record outcomes", work)


def _execute(conn: Any, sql: str) -> None:
    """Run one statement without parameters and commit it."""

    def work(cur: Any) -> None:
        cur.execute(sql)

    run_in_transaction(conn, work)


def _works(conn: Any, sql: str) -> bool:
    """True if ``sql`` runs (and is committed) on ``conn``."""
    try:
        _execute(conn, sql)
    except Exception:
        return False
    return True


def _entries(cur: Any, sql: str, params: tuple[Any, ...]) -> list[LedgerEntry]:
    cur.execute(sql, params)
    return [
        LedgerEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10])
        for r in cur.fetchall()
    ]


def _check_lengths(job_key: str, items: list[str], owner: str) -> None:
    if len(job_key) > MAX_KEY or len(owner) > MAX_OWNER or any(len(i) > MAX_KEY for i in items):
        raise ValueError(
            f"Ledger keys are at most {MAX_KEY} characters (owner ids {MAX_OWNER}): job key {job_key[:40]!r}..."
        )
