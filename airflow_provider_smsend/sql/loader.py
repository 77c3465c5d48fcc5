"""Load pandas frames of reports into SQL tables, one transaction per load. Airflow-free.

A :class:`Session` is one open database connection in one transaction, over the library made for
bulk loads on that database:

* PostgreSQL and SQLite: an ADBC connection (Apache Arrow's ``adbc-driver-postgresql``, which
  writes with ``COPY`` in binary, and ``adbc-driver-sqlite``): frames go in through
  ``cursor.adbc_ingest`` (:class:`AdbcSession`);
* MySQL/MariaDB and any other SQLAlchemy database: ``DataFrame.to_sql`` on the connection, in
  chunks, through the driver's ``executemany`` (:class:`SqlAlchemySession`).

:class:`TableLoader` writes a table of :mod:`~airflow_provider_smsend.sql.layouts`; with
``replace`` it deletes the load's scope first, in the same transaction, so a load either
happens whole or not at all (a malformed report line in the middle, a lost connection: rolled
back, the table is left exactly as it was). :class:`CompactBatchStatusLoader` does the same for
PostgreSQL's compact batch-status layout.

Example::

    import adbc_driver_sqlite.dbapi
    from airflow_provider_smsend.sql.dialect import dialect_for
    from airflow_provider_smsend.sql.layouts import CREDIT_SNAPSHOT_TABLE
    from airflow_provider_smsend.sql.loader import AdbcSession, TableLoader

    session = AdbcSession(adbc_driver_sqlite.dbapi.connect("reports.db"), dialect_for("sqlite"))
    loader = TableLoader(session, "smsend_credit_snapshot", CREDIT_SNAPSHOT_TABLE)
    loader.ensure_table()
    result = loader.load([frame], mode="replace", scope={"snapshot_date": day, "u_id": [1001]})
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.sql.dialect import Dialect, scope_values
from airflow_provider_smsend.sql.layouts import (
    BATCH_STATUS_TABLE,
    LOAD_COLUMNS,
    ROW_COLUMNS,
    VIEW_COLUMNS,
    CompactNames,
    TableSpec,
    compact_ddl,
    relation_kind,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

#: ``replace`` (default) deletes the load's scope then inserts; ``append`` inserts;
#: ``upsert`` inserts or updates on the table's key.
LOAD_MODES = ("replace", "append", "upsert")
#: Rows per ``to_sql`` batch (SQLAlchemy sessions).
DEFAULT_CHUNK_SIZE = 10_000
_IN_BATCH = 500


class TableLayoutError(ValueError):
    """The target table is missing (and may not be created) or lacks columns the load needs."""


@dataclass(frozen=True)
class LoadResult:
    """What one load did.

    :param table: the target table.
    :param load_mode: ``replace``, ``append`` or ``upsert``.
    :param rows: rows written.
    :param deleted: rows deleted first (``replace``), as the driver counts them.
    :param method: ``adbc`` (bulk ingest) or ``to_sql``.
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


def validate_load_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`LOAD_MODES`, else raise a :class:`ValueError`."""
    if mode not in LOAD_MODES:
        raise ValueError(f"load_mode must be one of {', '.join(LOAD_MODES)}; got {mode!r}.")
    return mode


# ------------------------------------------------------------------------------- sessions


class Session:
    """One database connection in one transaction (see the module). Subclasses do the I/O.

    :param dialect: the database family, with this driver's parameter marker.
    """

    method = "?"

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the driver's row count (0 when it has none)."""
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        raise NotImplementedError

    def delete(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a ``DELETE`` and return how many rows it deleted."""
        return self.execute(sql, params)

    def column_names(self, quoted_table: str) -> list[str] | None:
        """The lower-cased columns of a table or view, None if it does not exist (then rolled back)."""
        raise NotImplementedError

    def ingest(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        temporary: bool = False,
        types: Mapping[str, str] | None = None,
    ) -> None:
        """Append ``frame``'s rows to ``table`` (its columns by name).

        :param temporary: ``table`` is a temporary table.
        :param types: the SQL type of each column (for drivers that need it to read the rows).
        """
        raise NotImplementedError

    def ingest_all(
        self, table: str, frames: Iterable[pd.DataFrame], *, temporary: bool = False,
        types: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Append every frame of ``frames`` (pulled lazily) to ``table``, frame after frame."""
        for frame in frames:
            self.ingest(table, frame, temporary=temporary, types=types)

    def begin(self) -> None:
        """Start the load's transaction."""

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class AdbcSession(Session):
    """A session over an ADBC DB-API connection (PostgreSQL, SQLite); autocommit stays off.

    :param conn: ``adbc_driver_postgresql.dbapi.connect(uri)`` or ``adbc_driver_sqlite.dbapi.connect(path)``.
    :param dialect: ``postgres`` or ``sqlite`` (the marker is set to the driver's: ``$n`` or ``?``).
    """

    method = "adbc"

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        super().__init__(dialect.with_placeholder("$" if dialect.name == "postgres" else "?"))
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, tuple(params) if params else None)
            count = cursor.rowcount
            if (count is None or count < 0) and self.dialect.name == "sqlite":
                cursor.execute("SELECT changes()")  # the SQLite driver reports no row count
                count = cursor.fetchone()[0]
            return max(count or 0, 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, tuple(params) if params else None)
            return list(cursor.fetchall())

    def delete(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self.dialect.name == "postgres":  # the PostgreSQL driver reports no row count for a DELETE
            return int(
                self.query(f"WITH deleted AS ({sql} RETURNING 1) SELECT count(*) FROM deleted", params)[0][0]
            )
        return self.execute(sql, params)

    def column_names(self, quoted_table: str) -> list[str] | None:
        try:
            with self.conn.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {quoted_table} WHERE 1 = 0")
                names = [str(d[0]).lower() for d in (cursor.description or ())]
                cursor.fetchall()
        except Exception:
            self.conn.rollback()
            return None
        return names

    def ingest(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        temporary: bool = False,
        types: Mapping[str, str] | None = None,
    ) -> None:
        self.ingest_all(table, [frame], temporary=temporary, types=types)

    def ingest_all(
        self, table: str, frames: Iterable[pd.DataFrame], *, temporary: bool = False,
        types: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """One ``COPY`` for all the frames: the driver pulls each next frame while the server stores
        the previous ones (a frame per ingest would make parsing and storing take turns). An error
        raised while producing a frame (a malformed report line) is raised as it is."""
        import pyarrow as pa

        iterator = iter(frames)
        first = next(iterator, None)
        if first is None:
            return
        widths = {} if temporary else self._target_widths(table)

        def arrow(frame: pd.DataFrame) -> pa.Table:
            data = pa.Table.from_pandas(frame, preserve_index=False)
            for name, wanted in widths.items():
                if name in data.column_names and data.schema.field(name).type != wanted:
                    data = data.set_column(
                        data.column_names.index(name), name, data.column(name).cast(wanted)
                    )
            return data

        head = arrow(first)
        schema = head.schema
        failure: list[BaseException] = []

        def batches() -> Any:
            try:
                yield from head.to_batches()
                for frame in iterator:
                    yield from arrow(frame).cast(schema).to_batches()
            except BaseException as exc:  # the driver would wrap it: keep it to raise it as it is
                failure.append(exc)
                raise

        schema_, _, bare = table.rpartition(".")
        reader = pa.RecordBatchReader.from_batches(schema, batches())
        try:
            with self.conn.cursor() as cursor:
                if temporary:
                    cursor.adbc_ingest(bare, reader, mode="append", temporary=True)
                else:
                    cursor.adbc_ingest(bare, reader, mode="append", db_schema_name=schema_ or None)
        except Exception:
            if failure:
                raise failure[0] from None
            raise

    def _target_widths(self, table: str) -> dict[str, Any]:
        """PostgreSQL: the integer and timestamp types of ``table``'s columns, which a binary ``COPY``
        must match exactly (a table made by hand may hold a status as BIGINT, a load time as
        TIMESTAMP): each frame column of another width is cast to them (safely: an overflow fails)."""
        import pyarrow as pa

        if self.dialect.name != "postgres":
            return {}
        schema, _, bare = table.rpartition(".")
        target = self.conn.adbc_get_table_schema(bare, db_schema_filter=schema or None)
        return {
            f.name: f.type for f in target if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)
        }

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


class SqlAlchemySession(Session):
    """A session over a SQLAlchemy connection: ``DataFrame.to_sql`` in chunks (MySQL/MariaDB, others).

    Each chunk is one statement through the driver, on the session's connection and transaction
    (pandas' ``method=`` extension point): on MariaDB 10.6+ and MySQL 8+ an
    ``INSERT ... SELECT ... FROM JSON_TABLE(?)`` of the chunk as one JSON document (the server
    parses it in C: several times ``to_sql``'s default, docs/benchmarks.md, and no file on either
    side, unlike ``LOAD DATA LOCAL INFILE``, which would let the server read any client file);
    elsewhere an ``executemany`` of an ``INSERT``. On the ``JSON_TABLE`` path the columns with one
    value in the whole frame (request id, load time, run id...) are not given to pandas, whose
    ``to_sql`` turns every value it is given into a Python object first: each statement takes them
    from a one-row document.

    :param engine: a SQLAlchemy engine (e.g. a common-sql hook's ``get_sqlalchemy_engine()``).
    :param dialect: the database family (its marker is the driver's, e.g. ``%s``).
    :param chunk_size: rows per statement (``JSON_TABLE`` chunks: at most 5,000 rows).
    """

    method = "to_sql"
    #: Rows per JSON document: the fastest measured, and well under MariaDB's 16 MiB packet.
    JSON_CHUNK = 5_000

    def __init__(self, engine: Any, dialect: Dialect, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(dialect)
        self.conn = engine.connect()
        self.chunk_size = chunk_size
        self._transaction: Any = None
        self._json_table_ok: bool | None = None
        self._types: Mapping[str, str] = {}
        self._offset = 0
        self._chunk = chunk_size
        self._sender: Any = None
        self._pending: Any = None
        #: the frame's columns with one value, as a one-row frame (not given to pandas: ingest)
        self._constants: pd.DataFrame | None = None
        #: appended to each ``INSERT`` (MySQL upserts: ``ON DUPLICATE KEY UPDATE ...``)
        self.upsert_clause = ""

    def _driver_cursor(self) -> Any:
        return self.conn.connection.driver_connection.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._wait()
        self._ensure()
        result = self.conn.exec_driver_sql(sql, tuple(params)) if params else self.conn.exec_driver_sql(sql)
        return max(result.rowcount or 0, 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._wait()
        self._ensure()
        result = self.conn.exec_driver_sql(sql, tuple(params)) if params else self.conn.exec_driver_sql(sql)
        return [tuple(r) for r in result.fetchall()]

    def column_names(self, quoted_table: str) -> list[str] | None:
        self._wait()
        self._ensure()
        try:
            result = self.conn.exec_driver_sql(f"SELECT * FROM {quoted_table} WHERE 1 = 0")
            names = [str(k).lower() for k in result.keys()]
            result.fetchall()
        except Exception:
            self.rollback()
            return None
        return names

    def _ensure(self) -> None:
        if self._transaction is None or not self._transaction.is_active:
            self._transaction = self.conn.begin()

    def _json_table(self) -> bool:
        """Whether the server has ``JSON_TABLE`` (MariaDB 10.6+, MySQL 8.0.4+)."""
        if self._json_table_ok is None:
            ok = False
            if self.dialect.name == "mysql":
                version = str(self.query("SELECT VERSION()")[0][0])
                numbers = [int(n) for n in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
                ok = numbers[:2] >= [10, 6] if "mariadb" in version.lower() else numbers[:3] >= [8, 0, 4]
            self._json_table_ok = ok
        return self._json_table_ok

    def ingest(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        temporary: bool = False,
        types: Mapping[str, str] | None = None,
    ) -> None:
        # The previous frame's last chunk may still be in flight: pandas uses the connection too.
        # This frame's last one is waited for by the next use of the connection (commit included),
        # so the caller can parse the next frame meanwhile.
        self._wait()
        self._ensure()
        schema, _, bare = table.rpartition(".")
        self._types = types or {}
        self._offset = 0
        json_table = self._json_table()
        self._chunk = min(self.chunk_size, self.JSON_CHUNK) if json_table else self.chunk_size
        self._constants = None
        if json_table:
            # A column with one value in the whole frame (request id, load time, run id...) is not
            # given to pandas, which would turn each of its values into a Python object: each
            # chunk's statement takes it from a one-row document (_insert_json).
            same = [k for k in frame.columns if _one_value(frame[k])][: len(frame.columns) - 1]
            if same:
                self._constants = self._as_json_text(frame[same].iloc[:1].reset_index(drop=True))
                frame = frame.drop(columns=same)
        try:
            frame.to_sql(
                bare, self.conn, schema=schema or None, if_exists="append", index=False,
                chunksize=self._chunk,
                method=self._insert_json if json_table else self._executemany,
            )  # fmt: skip
        except BaseException:
            self._wait()
            raise

    def _head(self, pd_table: Any, keys: list[str]) -> str:
        quote = self.dialect.quote
        table = f"{pd_table.schema}.{pd_table.name}" if pd_table.schema else pd_table.name
        return f"INSERT INTO {quote(table)} ({', '.join(quote(k) for k in keys)})"

    def _executemany(
        self, pd_table: Any, conn: Any, keys: list[str], data_iter: Iterable[tuple[Any, ...]]
    ) -> int:
        """pandas' ``to_sql`` insertion method: one driver ``executemany`` per chunk (MySQL drivers
        turn it into multi-row ``INSERT``s)."""
        sql = f"{self._head(pd_table, keys)} VALUES ({', '.join(self.dialect.marks(len(keys)))}) {self.upsert_clause}"
        rows = list(data_iter)  # pandas gives None for every missing value
        cursor = self._driver_cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
        return len(rows)

    def _insert_json(
        self, pd_table: Any, conn: Any, keys: list[str], data_iter: Iterable[tuple[Any, ...]]
    ) -> int:
        """pandas' ``to_sql`` insertion method: the chunk as one JSON document read by ``JSON_TABLE``.

        The document is written by ``DataFrame.to_json`` from the chunk of ``pd_table.frame`` that
        pandas is at (chunks come in order, :attr:`JSON_CHUNK` rows each): money stays exact text,
        dates and timestamps ISO 8601, nulls ``null``. ``JSON_TABLE`` reads every value as text and the
        ``INSERT`` converts it to the column's type, so a value too long or out of range fails the load
        (strict mode) instead of being cut.
        """
        frame = pd_table.frame
        size = min(self._chunk, len(frame) - self._offset)
        chunk = frame.iloc[self._offset : self._offset + size]
        self._offset += size
        import pandas as pd

        chunk = self._as_json_text(chunk)
        # A column with one value in the whole chunk goes once, in a one-row document joined to every
        # row, with the frame's own one-value columns (ingest): the server parses far less JSON.
        same = [k for k in keys if _one_value(chunk[k])][: len(keys) - 1]
        varying = [k for k in keys if k not in same]
        head = chunk[same].iloc[:1].reset_index(drop=True)
        if self._constants is not None:
            head = pd.concat([head, self._constants], axis=1)
            same = [*same, *self._constants.columns]
        quote, mark = self.dialect.quote, self.dialect.marks(1)[0]

        def source(columns: list[str], alias: str) -> str:
            # As text: JSON_TABLE would truncate a value that does not fit a narrower type silently
            # (a warning, even in strict mode); the INSERT converts it under the table's own rules.
            paths = ", ".join(
                f"{quote(k)} {_json_table_type(self._types.get(k))} PATH '$[{i}]'"
                for i, k in enumerate(columns)
            )
            return f"JSON_TABLE({mark}, '$[*]' COLUMNS ({paths})) AS {alias}"

        documents = [chunk[varying].to_json(orient="values", date_format="iso", date_unit="us")]
        sources = source(varying, "smsend_rows")
        if same:
            documents.append(head.to_json(orient="values", date_format="iso", date_unit="us"))
            sources += f" CROSS JOIN {source(same, 'smsend_same')}"
        columns = [*keys, *(k for k in same if k not in keys)]
        picks = ", ".join(f"{'smsend_same' if k in same else 'smsend_rows'}.{quote(k)}" for k in columns)
        # WHERE TRUE ends the join, so that an upsert's ON DUPLICATE KEY is not read as its ON
        sql = f"{self._head(pd_table, columns)} SELECT {picks} FROM {sources} WHERE TRUE {self.upsert_clause}"
        self._send(sql, documents)
        if self._offset >= len(frame):
            self._wait()  # the last chunk: pandas may use the connection again before to_sql returns
        return size

    def _as_json_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its dates and money as text, for ``to_json``: money stays exact (before
        pandas 3.0, ``to_json`` writes a decimal as a float)."""
        import pandas as pd
        import pyarrow as pa

        texts = [
            k
            for k in frame.columns
            if self._types.get(k, "").upper() == "DATE"
            or (
                isinstance(frame[k].dtype, pd.ArrowDtype)
                and pa.types.is_decimal(frame[k].dtype.pyarrow_dtype)
            )
        ]
        return frame.astype({k: "string[pyarrow]" for k in texts}) if texts else frame

    def _send(self, sql: str, documents: list[str]) -> None:
        """Run one chunk's statement in the session's sender thread, after the previous one ended:
        the server stores chunk n while pandas writes the document of chunk n + 1 (the driver
        releases the GIL while it waits). The connection is used by one thread at a time."""
        from concurrent.futures import ThreadPoolExecutor

        self._wait()
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smsend-sql")

        def run() -> None:
            cursor = self._driver_cursor()
            try:
                cursor.execute(sql, tuple(documents))
            finally:
                cursor.close()

        self._pending = self._sender.submit(run)

    def _wait(self) -> None:
        """Wait for the chunk in flight; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def commit(self) -> None:
        self._wait()
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.commit()
        self._transaction = None

    def rollback(self) -> None:
        try:
            self._wait()
        except Exception:  # the rollback undoes it anyway
            pass
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()
        else:
            self.conn.rollback()
        self._transaction = None

    def close(self) -> None:
        try:
            self._wait()
        except Exception:  # the load failed already; its error was raised where it happened
            pass
        if self._sender is not None:
            self._sender.shutdown(wait=True)
        self.conn.close()


def _json_table_type(sql_type: str | None) -> str:
    """How ``JSON_TABLE`` reads a column: integers, timestamps and money as the widest of their kind
    (the frame's values always parse as such: the parser typed them), a ``VARCHAR(n)`` as
    ``VARCHAR(n + 1)``, anything else as text. ``JSON_TABLE`` cuts a value that does not fit its
    column silently (a warning, even in strict mode), so each is read one character wider than the
    table's column: a longer value reaches the ``INSERT`` still too long, and strict mode refuses it."""
    kind = (sql_type or "").upper()
    if kind in ("BIGINT", "INT", "INTEGER"):
        return "BIGINT"
    if kind.startswith("DATETIME"):
        return "DATETIME(6)"
    if kind.startswith("NUMERIC"):
        return "DECIMAL(65,4)"
    length = re.fullmatch(r"VARCHAR\((\d+)\)", kind)
    if length:  # one character more than the column: a longer value still reaches the INSERT too long
        return f"VARCHAR({int(length.group(1)) + 1})"
    return "LONGTEXT"


#: How the databases themselves say a unique key is broken: PostgreSQL (a row, an index being
#: built), SQLite, MariaDB/MySQL. Never words of the statement, which the drivers quote in their
#: errors too (a failing ``CREATE UNIQUE INDEX`` for another reason must keep its own error).
_DUPLICATE_KEY = re.compile(
    r"duplicate key value violates unique constraint|could not create unique index|UNIQUE constraint failed|"
    r"Duplicate entry"
)


@contextmanager
def _duplicate_keys_refused(table: str, key: Sequence[str], *, loading: bool = False) -> Iterator[None]:
    """A unique key the rows break becomes a :class:`TableLayoutError` that says what to do (a retry
    would only repeat the driver's error; drivers differ in its class, ADBC's SQLite ingest gives an
    InternalError): a unique index that cannot be built because appended loads repeat its key, or
    (``loading``) rows that repeat a key of a unique index of the table. The database's own words
    are kept, digits masked; the statement and its values (phone numbers) are not."""
    from airflow_provider_smsend.sql.transaction import mask_digits

    try:
        yield
    except Exception as exc:
        text = str(exc)
        found = _DUPLICATE_KEY.search(text)
        if found is None:
            raise
        said = mask_digits(text[found.start() :].splitlines()[0][:200].strip())
        columns = ", ".join(key)
        if loading:
            raise TableLayoutError(
                f"Cannot load into {table!r}: the load repeats a key of a unique index on it (the one an upsert "
                f"makes on ({columns}), or one of its own): {said}. If it is the upsert's, load with "
                "load_mode='upsert', which keeps the last row of each key."
            ) from None
        raise TableLayoutError(
            f"Cannot upsert into {table!r}: it holds rows with the same ({columns}) more than once "
            f"(appended loads), so its unique key cannot be made ({said}). Reload those reports with "
            "load_mode='replace' first, then upsert."
        ) from None


def _one_value(values: pd.Series) -> bool:
    """Whether a column holds one value (or none) in every row, missing values counted as one."""
    if len(values) > 1:
        first, last = values.iloc[0], values.iloc[-1]
        if _missing(first) != _missing(last) or (not _missing(first) and first != last):
            return False  # most columns that vary are told by their two ends, with no hashing
    return bool(values.nunique(dropna=False) <= 1)


def _missing(value: Any) -> bool:
    """pandas' missing values (None, NaN, NaT, NA), which a driver stores as NULL."""
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, str | bytes) else False
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------- frames


def frame_for(
    dialect: Dialect, spec: TableSpec, frame: pd.DataFrame, *, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """``frame`` in ``spec``'s column order and in the types ``dialect``'s driver stores.

    Integers int64 (``int`` columns int32 on PostgreSQL, whose binary ``COPY`` checks widths),
    text as strings, money exact (``decimal128(18, 4)``; SQLite: text with 4 decimals), timestamps
    UTC (MySQL: naive UTC; SQLite: ISO 8601 text), dates (SQLite: ISO text).
    """
    import pandas as pd
    import pyarrow as pa

    names = list(columns) if columns is not None else list(spec.column_names)
    kinds = {c.name: c.kind for c in spec.columns}
    out: dict[str, Any] = {}
    for name in names:
        kind = kinds.get(name, "text")
        values = frame[name]
        if kind in ("bigint", "int"):
            width = pa.int32() if kind == "int" and dialect.name == "postgres" else pa.int64()
            out[name] = values.astype(pd.ArrowDtype(width))
        elif kind == "money":
            money = values.astype(pd.ArrowDtype(pa.decimal128(18, 4)))
            out[name] = money.astype(pd.ArrowDtype(pa.string())) if dialect.name == "sqlite" else money
        elif kind == "timestamp":
            if (
                getattr(values.dtype, "tz", None) is None
                and getattr(getattr(values.dtype, "pyarrow_dtype", None), "tz", None) is None
            ):
                raise ValueError(
                    f"Column {name!r} has timestamps with no time zone; report dates must be aware."
                )
            stamps = pd.to_datetime(values, utc=True)
            if dialect.name == "sqlite":
                out[name] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").astype(
                    pd.ArrowDtype(pa.string())
                )
            elif dialect.name == "postgres":
                out[name] = stamps.astype(pd.ArrowDtype(pa.timestamp("us", tz="UTC")))
            else:
                out[name] = stamps.dt.tz_localize(None)
        elif kind == "date":
            days = values.astype(pd.ArrowDtype(pa.date32()))
            out[name] = days.astype(pd.ArrowDtype(pa.string())) if dialect.name == "sqlite" else days
        else:
            out[name] = values.astype(pd.ArrowDtype(pa.string()))
    return pd.DataFrame(out, index=frame.index)


def constant(value: Any, rows: int, arrow_type: pa.DataType) -> Any:
    """A column of one value (an Arrow-backed pandas array)."""
    import pandas as pd
    import pyarrow as pa

    return pd.array(pa.repeat(pa.scalar(value, arrow_type), rows), dtype=pd.ArrowDtype(arrow_type))


# ------------------------------------------------------------------------------- wide tables


class _LoadTransaction:
    """One load's transaction: committed when the block ends, rolled back (and logged) on any
    error, the commit's own included; the frames' source (an open HTTP stream) is closed either way.

    :param session: the load's session.
    :param table: the target, for messages.
    :param frames: the frames of the load (closed at the end if they can be).
    :param logger: where the outcome goes.
    """

    def __init__(self, session: Session, table: str, frames: Iterable[Any], logger: Any) -> None:
        self.session, self.table, self.frames, self.log = session, table, frames, logger
        self.rows = 0
        self.started = time.perf_counter()

    def __enter__(self) -> _LoadTransaction:
        self.session.begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                try:
                    self.session.commit()
                    return
                except BaseException:
                    self._rollback()
                    raise
            self._rollback()
        finally:
            close = getattr(self.frames, "close", None)
            if callable(close):  # a generator holding an open HTTP stream
                close()

    def _rollback(self) -> None:
        self.log.warning(
            "Load into %s failed after %d row(s): rolling back, the table is unchanged", self.table, self.rows
        )
        self.session.rollback()

    def result(self, mode: str, deleted: int, layout: str = "") -> LoadResult:
        """What the load did (logged)."""
        result = LoadResult(
            self.table, mode, self.rows, deleted, self.session.method, time.perf_counter() - self.started
        )
        self.log.info(
            "Loaded %d row(s) into %s (%s, %s%s) in %.2fs: %.0f rows/s",
            self.rows, self.table, mode, self.session.method, layout, result.seconds, result.rows_per_second,
        )  # fmt: skip
        return result


def merge_last_wins(
    session: Session, target: str, stage: str, columns: Sequence[str], key: Sequence[str]
) -> None:
    """Upsert a temporary ``stage`` into ``target`` on ``key`` (quoted names), the last staged row of
    a key winning, as row-by-row upserts would (PostgreSQL: by ``ctid``; SQLite: by ``rowid``);
    then drop the stage."""
    cols = ", ".join(columns)
    keys = ", ".join(key)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    if session.dialect.name == "sqlite":
        select = (
            f"SELECT {cols} FROM {stage} s WHERE s.rowid IN (SELECT MAX(rowid) FROM {stage} GROUP BY {keys})"
        )
    else:
        select = (
            f"SELECT DISTINCT ON ({keys}) {cols} FROM (SELECT *, ctid AS smsend_ctid FROM {stage}) s "
            f"ORDER BY {keys}, smsend_ctid DESC"
        )
    session.execute(f"INSERT INTO {target} ({cols}) {select} ON CONFLICT ({keys}) DO UPDATE SET {sets}")
    session.execute(f"DROP TABLE {stage}")


class TableLoader:
    """Write frames shaped as ``spec`` into one table.

    :param session: the open session; the loader commits or rolls back, never closes it.
    :param table: the target table, ``name`` or ``schema.name``.
    :param spec: the table layout.
    :param logger: where progress goes (default: this module's logger).
    """

    def __init__(self, session: Session, table: str, spec: TableSpec, *, logger: Any = None) -> None:
        session.dialect.quote(table)  # validates the name before any I/O
        self.session = session
        self.dialect = session.dialect
        self.table = table
        self.spec = spec
        self.log = logger or log
        #: Each layout column's SQL type in this dialect (extra columns: text).
        self.sql_types = {c.name: session.dialect.sql_type(c) for c in spec.columns}

    def _create_index(self, *, unique: bool) -> None:
        name = self.dialect.index_name(self.table, "smsend_uk" if unique else "smsend_scope")
        if self.dialect.name == "mysql":
            schema, _, bare = self.table.rpartition(".")
            found = self.session.query(
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = COALESCE(%s, DATABASE()) "
                "AND table_name = %s AND index_name = %s",
                (schema or None, bare, name),
            )
            if found and found[0][0]:
                return
        self.session.execute(self.dialect.create_index_sql(self.table, self.spec, unique=unique))

    def ensure_table(
        self, *, create: bool = True, unique_key: bool = False, extra: Sequence[str] = ()
    ) -> bool:
        """Create the table (and its scope index) if missing; check it has every column.

        :param create: create a missing table; if False a missing table is an error.
        :param unique_key: also ensure the unique index on the key (needed by ``upsert``).
        :param extra: columns beyond the layout's that the load writes (a ``transform`` added them).
        :returns: True if the table was created.
        :raises TableLayoutError: the table is missing and ``create`` is False, or lacks columns.
        """
        session = self.session
        created = False
        try:
            columns = session.column_names(self.dialect.quote(self.table))
            if columns is None:
                if not create:
                    raise TableLayoutError(
                        f"Table {self.table!r} does not exist; set create_table=True to create it."
                    )
                if extra:
                    raise TableLayoutError(
                        f"The load has column(s) {', '.join(extra)} beyond the {self.spec.name} layout: create "
                        f"{self.table!r} with them first, or drop them in the transform."
                    )
                self.log.info(
                    "Creating table %s for %s reports (%s)", self.table, self.spec.name, self.dialect.name
                )
                session.execute(self.dialect.create_table_sql(self.table, self.spec))
                self._create_index(unique=False)
                session.commit()
                created = True
                columns = session.column_names(self.dialect.quote(self.table))
            needed = [*self.spec.column_names, *extra]
            missing = [c for c in needed if columns is not None and c.lower() not in columns]
            if columns is None or missing:
                raise TableLayoutError(
                    f"Table {self.table!r} lacks column(s) {', '.join(missing) or '?'} needed for {self.spec.name} "
                    f"reports; expected {', '.join(needed)}. Use another table or add the columns."
                )
            if unique_key:
                with _duplicate_keys_refused(self.table, self.spec.key):
                    self._create_index(unique=True)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return created

    def _delete(self, scope: Mapping[str, Any]) -> int:
        """Delete the scope's rows; one list-valued column is deleted in IN batches."""
        q = self.dialect.quote
        listed = [c for c, v in scope.items() if isinstance(v, (list, tuple, set, frozenset))]
        if len(listed) > 1:
            raise ValueError(f"A replace scope may list values for one column only, got {listed!r}.")
        fixed: list[tuple[str, Any]] = [(c, v) for c, v in scope.items() if c not in listed]
        probe = frame_for(self.dialect, self.spec, _scope_frame(scope), columns=list(scope))
        values = {c: probe[c].iloc[0] if len(probe) else None for c, _ in fixed}
        batches: list[list[Any]] = [[]]
        if listed:
            every = frame_for(
                self.dialect,
                self.spec,
                _pd().DataFrame({listed[0]: scope_values(scope[listed[0]])}),
                columns=listed,
            )[listed[0]].tolist()
            batches = [every[i : i + _IN_BATCH] for i in range(0, len(every), _IN_BATCH)]
        deleted = 0
        for batch in batches:
            where: list[str] = []
            params: list[Any] = []
            for column, value in fixed:
                if value is None:
                    where.append(f"{q(column)} IS NULL")
                else:
                    where.append(f"{q(column)} = {self.dialect.marks(1, len(params) + 1)[0]}")
                    params.append(_python(values[column]))
            if listed:
                marks = self.dialect.marks(len(batch), len(params) + 1)
                where.append(f"{q(listed[0])} IN ({', '.join(marks)})")
                params.extend(_python(v) for v in batch)
            deleted += self.session.delete(
                f"DELETE FROM {q(self.table)} WHERE {' AND '.join(where) or '1 = 1'}", params
            )
        return deleted

    def load(
        self, frames: Iterable[pd.DataFrame], *, mode: str = "replace", scope: Mapping[str, Any] | None = None,
        extra: Sequence[str] = (),
    ) -> LoadResult:  # fmt: skip
        """Delete the scope (``replace``) and write ``frames``, all in one transaction.

        :param frames: frames with the layout's columns (and ``extra``), pulled lazily.
        :param mode: one of :data:`LOAD_MODES`.
        :param scope: ``replace`` only: column -> value (None means IS NULL) or list of values.
        :param extra: columns beyond the layout's to write as they are.
        :raises: whatever the frames or the database raise; the transaction is rolled back first.
        """
        validate_load_mode(mode)
        if mode == "replace" and not scope:
            raise ValueError(
                "load_mode 'replace' needs a scope (the request ids, date range or snapshot to replace)."
            )
        session = self.session
        deleted = 0
        columns = [*self.spec.column_names, *extra]
        with _LoadTransaction(session, self.table, frames, self.log) as transaction:
            if mode == "replace" and scope:
                deleted = self._delete(scope)
                self.log.info("Deleted %d row(s) of %s before the reload", deleted, self.table)
            stage = _Upsert(self, columns) if mode == "upsert" else None

            def shaped_frames() -> Iterator[pd.DataFrame]:
                for frame in frames:
                    shaped = frame_for(self.dialect, self.spec, frame, columns=columns)
                    transaction.rows += len(shaped)
                    yield shaped

            if stage is not None:
                stage.write(shaped_frames())
                stage.finish()
            else:
                with _duplicate_keys_refused(self.table, self.spec.key, loading=True):
                    session.ingest_all(self.table, shaped_frames(), types=self.sql_types)
        return transaction.result(mode, deleted)


class _Upsert:
    """Upsert on the table's key: MySQL by an ``ON DUPLICATE KEY`` executemany through ``to_sql``;
    PostgreSQL and SQLite by ingesting into a temporary table merged with ``ON CONFLICT``."""

    def __init__(self, loader: TableLoader, columns: list[str]) -> None:
        self.loader = loader
        self.columns = columns
        dialect = loader.dialect
        if dialect.name not in ("postgres", "sqlite", "mysql"):
            raise ValueError(
                f"load_mode 'upsert' is not supported for the {dialect.name!r} dialect; use 'replace'."
            )
        self.stage: str | None = None
        session = loader.session
        if isinstance(session, SqlAlchemySession):
            if dialect.name != "mysql":
                raise ValueError(
                    f"load_mode 'upsert' is not supported for the {dialect.name!r} dialect; use 'replace'."
                )
            session.upsert_clause = dialect.upsert_clause(loader.spec, columns)
            return
        self.stage = f"smsend_stage_{uuid.uuid4().hex[:12]}"
        cols = ", ".join(dialect.quote(c) for c in columns)
        session.execute(
            f"CREATE TEMP TABLE {dialect.quote(self.stage)} AS SELECT {cols} FROM {dialect.quote(loader.table)} WHERE 1 = 0"
        )

    def write(self, frames: Iterable[pd.DataFrame]) -> None:
        session = self.loader.session
        if self.stage is None:
            session.ingest_all(self.loader.table, frames, types=self.loader.sql_types)
        else:
            session.ingest_all(self.stage, frames, temporary=True)

    def finish(self) -> None:
        session, dialect, spec = self.loader.session, self.loader.dialect, self.loader.spec
        if isinstance(session, SqlAlchemySession):
            session.upsert_clause = ""
            return
        assert self.stage is not None
        q = dialect.quote
        merge_last_wins(
            session,
            q(self.loader.table),
            q(self.stage),
            [q(c) for c in self.columns],
            [q(c) for c in spec.key],
        )


def _pd() -> Any:
    import pandas as pd

    return pd


def _scope_frame(scope: Mapping[str, Any]) -> pd.DataFrame:
    """One row of the scope's single values (list-valued columns: their first value)."""
    pd = _pd()
    row = {
        c: (scope_values(v)[0] if isinstance(v, (list, tuple, set, frozenset)) and v else v)
        for c, v in scope.items()
    }
    return pd.DataFrame({c: [v] for c, v in row.items()})


def _python(value: Any) -> Any:
    """A pandas/Arrow scalar as the plain Python value a driver binds."""
    if _missing(value):
        return None
    as_py = getattr(value, "as_py", None)
    if callable(as_py):
        return as_py()
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | bytes):
        try:
            return item()
        except (ValueError, TypeError):
            return value
    to_py = getattr(value, "to_pydatetime", None)
    if callable(to_py):
        return to_py()
    return value


# ------------------------------------------------------------------------------- compact layout


class CompactBatchStatusLoader:
    """Load batch-status frames into PostgreSQL's compact layout (:mod:`~airflow_provider_smsend.sql.layouts`).

    :param session: an :class:`AdbcSession` on PostgreSQL; the loader commits or rolls back.
    :param table: the view users query (``name`` or ``schema.name``).
    :param logger: where progress goes (default: this module's logger).
    """

    def __init__(self, session: Session, table: str, *, logger: Any = None) -> None:
        self.session = session
        self.names = CompactNames(table)
        self.log = logger or log

    @staticmethod
    def layout(session: Session, table: str) -> str | None:
        """``compact`` (the view exists), ``wide`` (a table of that name exists) or None (nothing)."""
        try:
            kind = relation_kind(session, table)
        finally:
            session.rollback()
        if kind is None:
            return None
        if kind == "table":
            return "wide"
        if kind == "view":
            return "compact"
        raise TableLayoutError(
            f"{table!r} exists but is neither a table nor a view (pg_class kind {kind!r})."
        )

    def ensure(self, *, create: bool = True, unique_key: bool = False) -> bool:
        """Create the compact objects if missing and check their columns.

        :param unique_key: also ensure the unique index on ``(load_id, id)`` that ``upsert`` needs.
        :returns: True if the view was created.
        :raises TableLayoutError: missing and ``create`` is False, or objects lack columns.
        """
        names, session = self.names, self.session
        created = False
        try:
            kind = relation_kind(session, names.table)
            if kind is None:
                if not create:
                    raise TableLayoutError(
                        f"Table {names.table!r} does not exist; set create_table=True to create it."
                    )
                self.log.info(
                    "Creating %s (view) over %s and %s for batch-status reports (PostgreSQL compact layout)",
                    names.table, names.rows_name, names.loads_name,
                )  # fmt: skip
                for statement in compact_ddl(names):
                    session.execute(statement)
                created = True
            elif kind != "view":
                raise TableLayoutError(f"{names.table!r} is a {kind}, not the view of a compact layout.")
            for quoted, label, expected in (
                (names.rows, names.rows_name, ("load_id", *ROW_COLUMNS)),
                (names.loads, names.loads_name, LOAD_COLUMNS),
                (names.view, names.table, VIEW_COLUMNS),
            ):
                found = session.column_names(quoted)
                if found is None:
                    raise TableLayoutError(
                        f"{names.table!r} is a view but {label!r} is missing: it is not a compact batch-status "
                        "table of this provider. Use another table name."
                    )
                missing = [c for c in expected if c not in found]
                if missing:
                    raise TableLayoutError(f"{label!r} lacks column(s) {', '.join(missing)}.")
            if unique_key:
                with _duplicate_keys_refused(names.table, BATCH_STATUS_TABLE.key):
                    session.execute(
                        f"CREATE UNIQUE INDEX IF NOT EXISTS {names.rows_unique} ON {names.rows} (load_id, id)"
                    )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return created

    def _in(self, sql: str, fixed: list[Any], values: list[Any]) -> tuple[list[tuple[Any, ...]], int]:
        """Run ``sql`` (``{fixed}``: one fixed parameter, ``{in_}``: an IN list) over ``values`` in
        batches: the rows of a ``SELECT``, or how many rows a ``DELETE`` removed."""
        rows: list[tuple[Any, ...]] = []
        deleted = 0
        marks = self.session.dialect.marks
        for start in range(0, len(values), _IN_BATCH):
            batch = values[start : start + _IN_BATCH]
            text = sql.format(
                fixed=marks(1)[0] if fixed else "", in_=", ".join(marks(len(batch), len(fixed) + 1))
            )
            if text.lstrip().upper().startswith("SELECT"):
                rows.extend(self.session.query(text, [*fixed, *batch]))
            else:
                deleted += self.session.delete(text, [*fixed, *batch])
        return rows, deleted

    def _existing(self, request_ids: list[str], report_type: str) -> list[tuple[Any, ...]]:
        return self._in(
            f"SELECT load_id, request_id FROM {self.names.loads} WHERE report_type = {{fixed}} AND request_id IN ({{in_}})",
            [report_type], request_ids,
        )[0]  # fmt: skip

    def _delete_scope(self, request_ids: list[str], report_type: str) -> int:
        load_ids = [int(r[0]) for r in self._existing(request_ids, report_type)]
        if not load_ids:
            return 0
        deleted = self._in(f"DELETE FROM {self.names.rows} WHERE load_id IN ({{in_}})", [], load_ids)[1]
        self._in(f"DELETE FROM {self.names.loads} WHERE load_id IN ({{in_}})", [], load_ids)
        return deleted

    def load(
        self,
        frames: Iterable[pd.DataFrame],
        report_type: str,
        *,
        request_ids: list[str],
        mode: str = "replace",
        loaded_at: dt.datetime,
        dag_run_id: str | None,
    ) -> LoadResult:
        """Delete the scope (``replace``) and load every frame, all in one transaction.

        :param frames: batch-status frames (``request_id``, ``id``, ``dest``, ``status``,
            ``status_text``, ``netcode``), pulled lazily; every ``request_id`` is in ``request_ids``.
        :param report_type: ``queue``, ``notify`` or ``mnc``.
        :param request_ids: every request id of the load: each gets a ``_loads`` row (its
            ``row_count`` may be 0).
        :param mode: ``replace``, ``append`` or ``upsert`` (on ``(request_id, report_type, id)``).
        :param loaded_at: the load time, timezone-aware.
        :param dag_run_id: stored with the load.
        """
        import pandas as pd
        import pyarrow as pa

        validate_load_mode(mode)
        if loaded_at.tzinfo is None:
            raise ValueError("loaded_at must be timezone-aware.")
        names, session = self.names, self.session
        deleted = 0
        with _LoadTransaction(session, names.table, frames, self.log) as transaction:
            if mode == "replace":
                deleted = self._delete_scope(list(request_ids), report_type)
                self.log.info("Deleted %d row(s) of %s before the reload", deleted, names.table)
            load_ids: dict[str, int] = {}
            if mode == "upsert":
                for load_id, rid in self._existing(list(request_ids), report_type):
                    if rid in load_ids:
                        raise TableLayoutError(
                            f"Cannot upsert the {report_type} report of {rid!r}: {names.table!r} holds it more than "
                            "once (appended loads). Reload it with load_mode='replace'."
                        )
                    load_ids[rid] = int(load_id)
            reused = set(load_ids)
            new = [rid for rid in request_ids if rid not in load_ids]
            if new:
                sequence = session.query(
                    f"SELECT nextval(pg_get_serial_sequence({session.dialect.marks(1)[0]}, 'load_id')) "
                    f"FROM generate_series(1, {len(new)})",
                    [names.loads_name],
                )
                load_ids.update(zip(new, (int(r[0]) for r in sequence), strict=True))
            target = names.rows_name
            if mode == "upsert":
                target = f"smsend_stage_{uuid.uuid4().hex[:12]}"
                session.execute(f"CREATE TEMP TABLE {target} (LIKE {names.rows})")
            counts: dict[str, int] = {}
            id_type = pd.ArrowDtype(pa.int64())

            def rows_frames() -> Iterator[pd.DataFrame]:
                for frame in frames:
                    if not len(frame):
                        continue
                    shaped = pd.DataFrame(
                        {
                            "load_id": frame["request_id"].map(load_ids).astype(id_type),
                            "id": frame["id"].astype(id_type),
                            "dest": frame["dest"].astype(pd.ArrowDtype(pa.string())),
                            "status": frame["status"].astype(pd.ArrowDtype(pa.int32())),
                            "status_text": frame["status_text"].astype(pd.ArrowDtype(pa.string())),
                            "netcode": frame["netcode"].astype(pd.ArrowDtype(pa.string())),
                        }
                    )
                    if shaped["load_id"].isna().any():
                        stray = frame["request_id"][shaped["load_id"].isna()].iloc[0]
                        raise ValueError(f"A row of request id {stray!r} is not in the load's request ids.")
                    for rid, n in frame["request_id"].value_counts().items():
                        counts[str(rid)] = counts.get(str(rid), 0) + int(n)
                    transaction.rows += len(shaped)
                    yield shaped

            session.ingest_all(target, rows_frames(), temporary=mode == "upsert")
            if mode == "upsert":
                merge_last_wins(session, names.rows, target, ["load_id", *ROW_COLUMNS], ["load_id", "id"])
            self._write_loads(load_ids, reused, counts, report_type, loaded_at, dag_run_id)
        return transaction.result(mode, deleted, ", compact layout")

    def _write_loads(
        self, load_ids: dict[str, int], reused: set[str], counts: dict[str, int], report_type: str,
        loaded_at: dt.datetime, dag_run_id: str | None,
    ) -> None:  # fmt: skip
        """One ``_loads`` row per new request id (through a staged ingest), and updated ones for upserts."""
        import pandas as pd
        import pyarrow as pa

        names, session = self.names, self.session
        stage = f"smsend_loads_{uuid.uuid4().hex[:12]}"
        session.execute(
            f"CREATE TEMP TABLE {stage} (load_id BIGINT, request_id VARCHAR(64), row_count BIGINT, reused BOOLEAN)"
        )
        ids = list(load_ids)
        session.ingest(
            stage,
            temporary=True,
            frame=pd.DataFrame(
                {
                    "load_id": pd.array([load_ids[r] for r in ids], dtype=pd.ArrowDtype(pa.int64())),
                    "request_id": pd.array(ids, dtype=pd.ArrowDtype(pa.string())),
                    "row_count": pd.array([counts.get(r, 0) for r in ids], dtype=pd.ArrowDtype(pa.int64())),
                    "reused": pd.array([r in reused for r in ids], dtype=pd.ArrowDtype(pa.bool_())),
                }
            ),
        )
        m = session.dialect.marks(3)
        session.execute(
            f"INSERT INTO {names.loads} (load_id, request_id, report_type, loaded_at, dag_run_id, row_count) "
            f"OVERRIDING SYSTEM VALUE SELECT load_id, request_id, {m[0]}, CAST({m[1]} AS TIMESTAMPTZ), {m[2]}, row_count "
            f"FROM {stage} WHERE NOT reused",
            [report_type, loaded_at.astimezone(dt.UTC).isoformat(), dag_run_id],
        )
        if reused:
            m = session.dialect.marks(2)
            session.execute(
                f"UPDATE {names.loads} l SET loaded_at = CAST({m[0]} AS TIMESTAMPTZ), dag_run_id = {m[1]}, "
                f"row_count = (SELECT count(*) FROM {names.rows} r WHERE r.load_id = l.load_id) "
                f"FROM {stage} s WHERE s.reused AND l.load_id = s.load_id",
                [loaded_at.astimezone(dt.UTC).isoformat(), dag_run_id],
            )
        session.execute(f"DROP TABLE {stage}")
