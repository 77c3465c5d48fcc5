"""The suppression list: numbers that must not be texted (opt-outs), in a table of any SQL database.

One row per number, in E.164 with its ``+`` (the form the SMS operator sends to), with why and
since when (README, "Consent before sending")::

    number  VARCHAR(32) PRIMARY KEY    +393331234567
    reason  VARCHAR(64)                e.g. "STOP reply", "complaint"
    since   timestamp (UTC)            PostgreSQL TIMESTAMPTZ, MariaDB/MySQL DATETIME(6) holding
                                       UTC, SQLite ISO 8601 text (sql/dialect.py's one type map)

Numbers are normalised with the SMS operator's own rule
(:func:`airflow_provider_smsend.client.numbers.normalize_number`, national forms read in
``region``), so ``333 123 4567``, ``0039333…`` and ``+39333…`` are one entry. No Airflow inside:
``hook`` is anything with ``get_conn()`` returning a DB-API connection (a common-sql ``DbApiHook``);
its ``placeholder`` and its connection's type choose the SQL spelling.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, mask_number, normalize_number
from airflow_provider_smsend.sql.dialect import Dialect, dialect_for
from airflow_provider_smsend.sql.layouts import Column
from airflow_provider_smsend.sql.transaction import quietly, run_in_transaction

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)

DEFAULT_SUPPRESSION_TABLE = "smsend_suppression"
#: Widths of the table's text columns.
NUMBER_LENGTH, REASON_LENGTH = 32, 64
#: Numbers per ``IN (...)`` query.
BATCH = 500


class SuppressionList:
    """Read and add opt-outs in a suppression table.

    :param hook: a common-sql hook (``DbApiHook``: SQLite, PostgreSQL, MariaDB/MySQL, ...), or any
        object with ``get_conn()`` (and optionally ``placeholder`` and ``connection.conn_type``).
    :param table: the table's name (``table`` or ``schema.table``; letters, digits and ``_``).
    :param region: the region national numbers are read in (the smSend connection's
        ``default_region``; Italy by default).

    Example::

        from airflow.providers.postgres.hooks.postgres import PostgresHook

        optouts = SuppressionList(PostgresHook(postgres_conn_id="warehouse"))
        optouts.ensure()
        optouts.add([("+393331234567", "STOP reply")], since=dt.datetime.now(dt.UTC))
        optouts.suppressed(["3331234567", "+393339876543"])  # {"+393331234567"}
    """

    def __init__(
        self, hook: DbApiHook | Any, table: str = DEFAULT_SUPPRESSION_TABLE, *, region: str = DEFAULT_REGION
    ) -> None:
        self.hook = hook
        self.region = region
        self.dialect = _dialect(hook)
        self.table = self.dialect.quote(table)  # refuses anything but a plain (schema.)name

    # ----------------------------------------------------------------- table

    def ensure(self) -> None:
        """Create the table if it is absent (never changes or drops one that exists)."""
        since = self.dialect.sql_type(Column("since", "timestamp"))
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if self.dialect.name == "mysql" else ""
        create = (
            f"CREATE TABLE IF NOT EXISTS {self.table} (number VARCHAR({NUMBER_LENGTH}) NOT NULL PRIMARY KEY, "
            f"reason VARCHAR({REASON_LENGTH}), since {since} NOT NULL){suffix}"
        )

        def work(cur: Any) -> None:
            cur.execute(create)

        try:
            self._run(work)
        except Exception:
            # Two tasks creating it at once: PostgreSQL's IF NOT EXISTS can still fail for the loser
            # on its catalog's unique index. The table is there: go on.
            if not self._exists():
                raise

    def _exists(self) -> bool:
        def work(cur: Any) -> None:
            cur.execute(f"SELECT 1 FROM {self.table} WHERE 1 = 0")
            cur.fetchall()

        try:
            self._run(work)
        except Exception:
            return False
        return True

    # ----------------------------------------------------------------- writes

    def add(self, entries: Iterable[tuple[str, str]], since: dt.datetime) -> int:
        """Add ``(number, reason)`` entries not in the list yet; return how many were new.

        A number already in the list keeps its first reason and time. Every number is checked
        before anything is written.

        :param entries: ``(number, reason)`` pairs; numbers in any form :func:`normalize_number`
            reads (landlines accepted); reasons at most 64 characters.
        :param since: when the opt-out was made (timezone-aware; stored in UTC).
        :raises SmSendValidationError: an invalid number (masked in the message); nothing is added.
        :raises ValueError: a naive ``since`` or a reason over 64 characters; nothing is added.
        """
        if not isinstance(since, dt.datetime) or since.tzinfo is None or since.utcoffset() is None:
            raise ValueError(f"since must be a timezone-aware datetime (UTC is stored), got {since!r}.")
        rows: dict[str, str | None] = {}
        for number, reason in entries:
            e164 = self._normal(number)
            if e164 is None:
                raise SmSendValidationError(
                    f"Cannot add {mask_number(str(number))!r} to the suppression list: it is not a valid phone "
                    f"number (region {self.region!r} for national forms). Nothing was added."
                )
            if reason is not None and len(str(reason)) > REASON_LENGTH:
                raise ValueError(
                    f"A suppression reason is at most {REASON_LENGTH} characters, got {len(str(reason))}: "
                    f"{str(reason)[:40]!r}... Nothing was added."
                )
            rows.setdefault(e164, None if reason is None else str(reason))
        if not rows:
            return 0
        when = self._stamp(since)
        insert = self.dialect.insert_if_absent_sql(self.table, ("number", "reason", "since"), ("number",))
        generic = self.dialect.name not in ("postgres", "sqlite", "mysql")

        def work(cur: Any) -> int:
            new = 0
            for number, reason in rows.items():
                params: tuple[Any, ...] = (number, reason, when)
                cur.execute(insert, params + (number,) if generic else params)
                new += 1 if cur.rowcount == 1 else 0
            return new

        added = self._run(work)
        log.info(
            "Suppression list %s: %d number(s) added, %d already in it.", self.table, added, len(rows) - added
        )
        return added

    # ----------------------------------------------------------------- reads

    def suppressed(self, numbers: Iterable[object]) -> set[str]:
        """The numbers among ``numbers`` that are in the list, in E.164.

        Numbers are normalised first (an invalid one cannot be in the list and is left out);
        looked up in batches of 500 (one ``IN`` query each, on the primary key).
        """
        wanted = sorted({e for e in (self._normal(n) for n in numbers) if e is not None})
        if not wanted:
            return set()

        def work(cur: Any) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), BATCH):
                part = wanted[start : start + BATCH]
                marks = ", ".join(self.dialect.marks(len(part)))
                cur.execute(f"SELECT number FROM {self.table} WHERE number IN ({marks})", tuple(part))
                found.update(str(row[0]) for row in cur.fetchall())
            return found

        return self._run(work)

    # ----------------------------------------------------------------- helpers

    def _normal(self, number: object) -> str | None:
        try:
            e164 = normalize_number(number, region=self.region, allow_landlines=True)
        except SmSendValidationError:
            return None
        return e164 if len(e164) <= NUMBER_LENGTH else None

    def _stamp(self, since: dt.datetime) -> Any:
        """``since`` as this dialect stores a UTC timestamp."""
        utc = since.astimezone(dt.UTC)
        if self.dialect.name == "sqlite":
            return utc.isoformat(timespec="microseconds")
        if self.dialect.name == "postgres":
            return utc
        return utc.replace(tzinfo=None)  # DATETIME(6) / TIMESTAMP holding UTC

    def _run(self, work: Any) -> Any:
        """Run ``work(cursor)`` on a new connection in one transaction, committed, then close it."""
        conn = self.hook.get_conn()
        try:
            return run_in_transaction(conn, work)
        finally:
            quietly(conn.close)


def _dialect(hook: Any) -> Dialect:
    """The dialect of ``hook``'s database: its connection's type (or ``dialect_name``), its placeholder."""
    placeholder = getattr(hook, "placeholder", None)
    conn_type = None
    connection = getattr(hook, "connection", None)
    if connection is not None:
        conn_type = getattr(connection, "conn_type", None)
    if not conn_type:
        try:
            conn_type = getattr(hook, "dialect_name", None)
        except Exception:  # a hook that cannot build its URI
            conn_type = None
    return dialect_for(conn_type, placeholder=placeholder if isinstance(placeholder, str) else None)
