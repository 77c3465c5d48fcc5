"""Load report records into a SQL table over any DB-API connection, in one transaction.

Airflow-free: :class:`TableLoader` takes a DB-API connection (sqlite3, psycopg 3, psycopg2,
mysqlclient, PyMySQL...) and a :class:`~airflow_provider_smsend.client.tables.Dialect`.

* The table is created if missing (never dropped), with the dialect's types and an index on the
  replace scope; ``upsert`` also ensures a unique index on the key.
* :meth:`TableLoader.load` runs delete (``replace``) and inserts in ONE transaction: records are
  pulled lazily in chunks, so memory stays flat, and any error - a malformed report line in the
  middle, a lost connection - rolls everything back: the table is left exactly as it was.
* PostgreSQL loads through ``COPY`` (psycopg 3 ``cursor.copy``, binary when the table's column
  types are the layout's, so the server parses no text - a timestamp in text costs it more than a
  whole row otherwise; or psycopg2 ``copy_expert``); other databases, and PostgreSQL upserts,
  through batched ``executemany``.

Example::

    import sqlite3
    from airflow_provider_smsend.client.tables import BATCH_STATUS_TABLE, dialect_for
    from airflow_provider_smsend.client.sqlload import TableLoader

    loader = TableLoader(sqlite3.connect("reports.db"), dialect_for("sqlite"), "sms_status", BATCH_STATUS_TABLE)
    loader.ensure_table()
    result = loader.load(records, mode="replace", scope={"request_id": ["HTTP1"], "report_type": "notify"})
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_smsend.client.tables import (
    Dialect,
    TableSpec,
    binary_copy_types,
    chunked,
    copy_text_lines,
    scope_values,
)

log = logging.getLogger(__name__)

#: ``replace`` (default) deletes the load's scope then inserts; ``append`` inserts;
#: ``upsert`` inserts or updates on the table's key.
LOAD_MODES = ("replace", "append", "upsert")
DEFAULT_CHUNK_SIZE = 50_000
_IN_BATCH = 500


class TableLayoutError(ValueError):
    """The target table is missing (and may not be created) or lacks columns the load needs."""


@dataclass(frozen=True)
class LoadResult:
    """What one load did.

    :param table: the target table.
    :param load_mode: ``replace``, ``append`` or ``upsert``.
    :param rows: records written.
    :param deleted: rows deleted first (``replace``), as the driver counts them.
    :param method: ``copy`` or ``executemany``.
    :param seconds: wall time of the transaction.
    """

    table: str
    load_mode: str
    rows: int
    deleted: int
    method: str
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Load rate (0 when nothing was loaded)."""
        return self.rows / self.seconds if self.rows and self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the transfer operators' XCom)."""
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def column_names(cursor: Any, quoted_table: str) -> set[str]:
    """The lower-cased column names of a table or view (a query that reads no row)."""
    cursor.execute(f"SELECT * FROM {quoted_table} WHERE 1 = 0")
    names = {str(d[0]).lower() for d in (cursor.description or ())}
    cursor.fetchall()
    return names


def validate_load_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`LOAD_MODES`, else raise a :class:`ValueError`."""
    if mode not in LOAD_MODES:
        raise ValueError(f"load_mode must be one of {', '.join(LOAD_MODES)}; got {mode!r}.")
    return mode


class TableLoader:
    """Write records shaped by :mod:`~airflow_provider_smsend.client.tables` into one table.

    :param conn: an open DB-API connection; the loader commits or rolls back, never closes it.
    :param dialect: the database family.
    :param table: the target table, ``name`` or ``schema.name``.
    :param spec: the table layout the records follow.
    :param chunk_size: records per ``executemany``/``COPY`` batch.
    :param logger: where progress goes (default: this module's logger).
    """

    def __init__(
        self,
        conn: Any,
        dialect: Dialect,
        table: str,
        spec: TableSpec,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        logger: Any = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}.")
        dialect.quote(table)  # validates the name before any I/O
        self.conn = conn
        self.dialect = dialect
        self.table = table
        self.spec = spec
        self.chunk_size = chunk_size
        self.log = logger or log

    # ------------------------------------------------------------------ table

    def _columns(self, cursor: Any) -> set[str] | None:
        """The table's column names, or None when it does not exist (the failed probe rolled back)."""
        try:
            names = column_names(cursor, self.dialect.quote(self.table))
        except Exception:
            self.conn.rollback()
            return None
        self.conn.rollback()
        return names

    def _mysql_index_exists(self, cursor: Any, name: str) -> bool:
        schema, _, bare = self.table.rpartition(".")
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = COALESCE(%s, DATABASE()) "
            "AND table_name = %s AND index_name = %s",
            (schema or None, bare, name),
        )
        return bool(cursor.fetchone()[0])

    def _create_index(self, cursor: Any, *, unique: bool) -> None:
        name = self.dialect.index_name(self.table, "smsend_uk" if unique else "smsend_scope")
        if self.dialect.name == "mysql" and self._mysql_index_exists(cursor, name):
            return
        cursor.execute(self.dialect.create_index_sql(self.table, self.spec, unique=unique))

    def ensure_table(self, *, create: bool = True, unique_key: bool = False) -> bool:
        """Create the table (and its scope index) if missing; check it has every column.

        :param create: create a missing table; if False a missing table is an error.
        :param unique_key: also ensure the unique index on the key (needed by ``upsert``).
        :returns: True if the table was created.
        :raises TableLayoutError: the table is missing and ``create`` is False, or lacks columns.
        """
        cursor = self.conn.cursor()
        created = False
        try:
            columns = self._columns(cursor)
            if columns is None:
                if not create:
                    raise TableLayoutError(
                        f"Table {self.table!r} does not exist; set create_table=True to create it."
                    )
                self.log.info(
                    "Creating table %s for %s reports (%s)", self.table, self.spec.name, self.dialect.name
                )
                cursor.execute(self.dialect.create_table_sql(self.table, self.spec))
                self._create_index(cursor, unique=False)
                self.conn.commit()
                created = True
                columns = self._columns(cursor)
            missing = [c for c in self.spec.column_names if columns is not None and c.lower() not in columns]
            if columns is None or missing:
                raise TableLayoutError(
                    f"Table {self.table!r} lacks column(s) {', '.join(missing) or '?'} needed for {self.spec.name} "
                    f"reports; expected {', '.join(self.spec.column_names)}. Use another table or add the columns."
                )
            if unique_key:
                self._create_index(cursor, unique=True)
                self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        finally:
            cursor.close()
        return created

    # ------------------------------------------------------------------ load

    def _begin(self, cursor: Any) -> None:
        name = self.dialect.name
        if name == "sqlite":
            if not self.conn.in_transaction:
                cursor.execute("BEGIN IMMEDIATE")
        elif name == "mysql":
            cursor.execute("START TRANSACTION")
        elif getattr(self.conn, "autocommit", False) is True:
            self.conn.autocommit = False

    def _delete(self, cursor: Any, scope: Mapping[str, Any]) -> int:
        """Delete the scope's rows; one list-valued column is deleted in IN batches."""
        q, ph = self.dialect.quote, self.dialect.placeholder
        listed = [c for c, v in scope.items() if isinstance(v, (list, tuple, set, frozenset))]
        if len(listed) > 1:
            raise ValueError(f"A replace scope may list values for one column only, got {listed!r}.")
        fixed_sql: list[str] = []
        fixed_params: list[Any] = []
        adapt = dict(zip(self.spec.column_names, self.dialect.adapters(self.spec), strict=True))
        for column, value in scope.items():
            if column in listed:
                continue
            if value is None:
                fixed_sql.append(f"{q(column)} IS NULL")
            else:
                fixed_sql.append(f"{q(column)} = {ph}")
                fixed_params.append(adapt[column](value))
        batches: list[list[Any]] = [[]]
        if listed:
            values = [adapt[listed[0]](v) for v in scope_values(scope[listed[0]])]
            batches = [values[i : i + _IN_BATCH] for i in range(0, len(values), _IN_BATCH)]
        deleted = 0
        for batch in batches:
            where = list(fixed_sql)
            if listed:
                where.append(f"{q(listed[0])} IN ({', '.join([ph] * len(batch))})")
            cursor.execute(
                f"DELETE FROM {q(self.table)} WHERE {' AND '.join(where) or '1 = 1'}", (*fixed_params, *batch)
            )
            deleted += max(cursor.rowcount or 0, 0)
        return deleted

    def _writer(
        self, cursor: Any, mode: str, stack: ExitStack | None = None
    ) -> tuple[str, Callable[[list[tuple[Any, ...]]], None]]:
        """How chunks are written. With a ``stack``, one psycopg 3 ``COPY`` stays open on it for the
        whole load (the server stores rows while the next chunk is parsed); else one per chunk."""
        if self.dialect.name == "postgres" and mode != "upsert":
            sql = self.dialect.copy_sql(self.table, self.spec)
            if hasattr(cursor, "copy"):  # psycopg 3
                types = self._binary_types(cursor)
                if types is not None:
                    sql = self.dialect.copy_sql(self.table, self.spec, binary=True)

                def start(chunk_stack: ExitStack) -> Callable[[tuple[Any, ...]], None]:
                    copy = chunk_stack.enter_context(cursor.copy(sql))  # ends (or fails) with the stack
                    if types is not None:
                        copy.set_types(types)
                    return copy.write_row  # psycopg adapts each value (C-accelerated)

                if stack is not None:
                    write_row = start(stack)

                    def copy3(rows: list[tuple[Any, ...]]) -> None:
                        for row in rows:
                            write_row(row)

                    return "copy", copy3

                def copy3_chunk(rows: list[tuple[Any, ...]]) -> None:
                    with ExitStack() as chunk_stack:
                        write = start(chunk_stack)
                        for row in rows:
                            write(row)

                return "copy", copy3_chunk
            if hasattr(cursor, "copy_expert"):  # psycopg2

                def copy2(rows: list[tuple[Any, ...]]) -> None:
                    cursor.copy_expert(sql, io.StringIO(copy_text_lines(rows)))

                return "copy", copy2
        sql = (
            self.dialect.upsert_sql(self.table, self.spec)
            if mode == "upsert"
            else self.dialect.insert_sql(self.table, self.spec)
        )
        return "executemany", lambda rows: cursor.executemany(sql, rows)

    def _binary_types(self, cursor: Any) -> list[str] | None:
        """The type names of a binary ``COPY`` into the table's columns, or None (text ``COPY``)."""
        cols = ", ".join(self.dialect.quote(c) for c in self.spec.column_names)
        cursor.execute(f"SELECT {cols} FROM {self.dialect.quote(self.table)} WHERE 1 = 0")
        oids = [getattr(d, "type_code", None) for d in (cursor.description or ())]
        cursor.fetchall()
        return binary_copy_types(self.spec, [o if isinstance(o, int) else -1 for o in oids])

    def load(
        self,
        records: Iterable[tuple[Any, ...]],
        *,
        mode: str = "replace",
        scope: Mapping[str, Any] | None = None,
        adapted: bool = False,
    ) -> LoadResult:
        """Delete the scope (``replace``) and write ``records``, all in one transaction.

        :param records: tuples in :attr:`TableSpec.columns` order, pulled lazily.
        :param mode: one of :data:`LOAD_MODES`.
        :param scope: ``replace`` only: column -> value (None means IS NULL) or list of values.
        :param adapted: the records already hold what this dialect's driver stores (e.g. UTC-aware
            timestamps for PostgreSQL): skip :meth:`Dialect.row_adapter`.
        :raises: whatever the records or the database raise; the transaction is rolled back first.
        """
        validate_load_mode(mode)
        if mode == "replace" and not scope:
            raise ValueError(
                "load_mode 'replace' needs a scope (the request ids, date range or snapshot to replace)."
            )
        adapt = None if adapted else self.dialect.row_adapter(self.spec)
        started = time.perf_counter()
        cursor = self.conn.cursor()
        rows = deleted = 0
        method = "executemany"
        try:
            self._begin(cursor)
            if mode == "replace" and scope:
                deleted = self._delete(cursor, scope)
                self.log.info("Deleted %d row(s) of %s before the reload", deleted, self.table)
            with ExitStack() as stack:
                method, write = self._writer(cursor, mode, stack)
                for chunk in chunked(records, self.chunk_size):
                    write(chunk if adapt is None else [adapt(record) for record in chunk])
                    rows += len(chunk)
                    self.log.info(
                        "Wrote %d row(s) to %s (%d so far, %s)", len(chunk), self.table, rows, method
                    )
            self.conn.commit()
        except BaseException:
            self.log.warning(
                "Load into %s failed after %d row(s): rolling back, the table is unchanged", self.table, rows
            )
            self.conn.rollback()
            raise
        finally:
            close = getattr(records, "close", None)
            if callable(close):
                close()
            cursor.close()
        result = LoadResult(self.table, mode, rows, deleted, method, time.perf_counter() - started)
        self.log.info(
            "Loaded %d row(s) into %s (%s, %s) in %.2fs: %.0f rows/s",
            rows, self.table, mode, method, result.seconds, result.rows_per_second,
        )  # fmt: skip
        return result
