"""Report tables: column layouts, SQL types per dialect and row shaping, with no Airflow inside.

Three tables receive the gateway's reports (see :mod:`airflow_provider_smsend.transfers`):

* :data:`BATCH_STATUS_TABLE` - batch-status ``queue``/``notify``/``mnc`` rows, one per message;
* :data:`USERLOG_TABLE` - userlog-get ``credits``/``recv_add``/``recv_del`` operations;
* :data:`CREDIT_SNAPSHOT_TABLE` - dated credit-get balances, one per client and day.

Types are exact (NOTES.md): ids and statuses are integers, numbers stay text with their ``+``,
money is :class:`~decimal.Decimal` in ``NUMERIC(18,4)``, report dates are aware and stored in UTC:
PostgreSQL ``TIMESTAMPTZ``; MariaDB/MySQL ``DATETIME(6)`` holding UTC; SQLite ISO 8601 text in UTC
(``2024-07-01T08:00:00.000000+00:00``, sortable). SQLite has no exact decimal type (its NUMERIC
affinity turns text into a float), so money is stored there as text with 4 decimals.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_smsend.client.errors import SmSendReportError
from airflow_provider_smsend.client.reports import (
    BATCH_STATUS_COLUMNS,
    BatchStatusRow,
    UserlogEntry,
    _header,
    _int,
    _no_header,
    _split,
    status_class,
)

UTC = dt.UTC

#: Column kinds: ``bigint``, ``int``, ``text`` (with a length), ``money``, ``timestamp``, ``date``.
KINDS = ("bigint", "int", "text", "money", "timestamp", "date")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_MONEY_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class Column:
    """A table column.

    :param name: the column name (also the report's column name where there is one).
    :param kind: one of :data:`KINDS`.
    :param length: for ``text``: the ``VARCHAR`` length.
    :param nullable: whether the column accepts NULL.
    """

    name: str
    kind: str
    length: int = 255
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    """The layout of a report table.

    :param name: what the table holds (for messages).
    :param columns: the columns, in insert order.
    :param key: the columns that identify a row (upsert key, unique index).
    :param scope: the load metadata columns a ``replace`` deletes by (indexed).
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    scope: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in insert order."""
        return tuple(c.name for c in self.columns)


_META = (Column("loaded_at", "timestamp", nullable=False), Column("dag_run_id", "text", 250))

BATCH_STATUS_TABLE = TableSpec(
    name="batch status",
    columns=(
        Column("request_id", "text", 64, nullable=False),
        Column("report_type", "text", 16, nullable=False),
        Column("id", "bigint", nullable=False),
        Column("dest", "text", 32, nullable=False),
        Column("status", "int", nullable=False),
        Column("status_class", "text", 16, nullable=False),
        Column("status_text", "text", 255),
        Column("netcode", "text", 64),
        *_META,
    ),
    key=("request_id", "report_type", "id"),
    scope=("request_id", "report_type"),
)

USERLOG_TABLE = TableSpec(
    name="userlog",
    columns=(
        Column("report_type", "text", 16, nullable=False),
        Column("date_from", "date"),
        Column("date_to", "date"),
        Column("filter_u_id", "bigint"),
        Column("id", "bigint", nullable=False),
        Column("date", "timestamp", nullable=False),
        Column("u_id", "bigint", nullable=False),
        Column("username", "text", 255),
        Column("bill_id", "bigint"),
        Column("credit", "money"),
        Column("dest", "text", 32),
        Column("sharecode", "text", 64),
        *_META,
    ),
    key=("report_type", "id"),
    scope=("report_type", "date_from", "date_to", "filter_u_id"),
)

CREDIT_SNAPSHOT_TABLE = TableSpec(
    name="credit snapshot",
    columns=(
        Column("snapshot_date", "date", nullable=False),
        Column("u_id", "bigint", nullable=False),
        Column("credit", "money", nullable=False),
        *_META,
    ),
    key=("snapshot_date", "u_id"),
    scope=("snapshot_date", "u_id"),
)


def batch_status_records(
    rows: Iterable[BatchStatusRow],
    *,
    request_id: str,
    report_type: str,
    loaded_at: dt.datetime,
    dag_run_id: str | None,
) -> Iterator[tuple[Any, ...]]:
    """Shape batch-status rows into :data:`BATCH_STATUS_TABLE` records (Python values)."""
    for row in rows:
        yield (
            request_id, report_type, row.id, row.dest, row.status, status_class(row.status),
            row.status_text, row.netcode, loaded_at, dag_run_id,
        )  # fmt: skip


#: The report types :func:`fast_batch_status_records` reads (one row per line, no ragged rows).
FAST_BATCH_STATUS_TYPES = ("queue", "notify")
_STATUS_CACHE = 1024


def fast_batch_status_records(
    lines: Iterable[str | bytes],
    *,
    request_id: str,
    report_type: str,
    loaded_at: dt.datetime,
    dag_run_id: str | None,
) -> Iterator[tuple[Any, ...]]:
    """Raw ``queue``/``notify`` report lines straight into :data:`BATCH_STATUS_TABLE` records.

    The same records, and the same :class:`SmSendReportError` (message and line number) on the
    same line, as :func:`batch_status_records` over
    :func:`~airflow_provider_smsend.client.reports.iter_batch_status`, in one tight loop: a plain
    line (no quote, no CR, every used field already stripped, digits-only id and status) is split
    once; any other line goes through the parser's own rules line by line (:func:`_slow_record`).
    ``mnc`` reports (ragged rows) are not handled here.
    """
    if report_type not in FAST_BATCH_STATUS_TYPES:
        raise ValueError(f"fast_batch_status_records reads {FAST_BATCH_STATUS_TYPES}, not {report_type!r}.")
    what = f"batch-status {report_type} report"
    numbered = enumerate(lines, start=1)
    index: dict[str, int] | None = None
    for line_no, raw in numbered:  # the header: the first non-blank line (the parser's _records)
        text = (raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw).rstrip("\r\n")
        if text.strip():
            index = _header(line_no, text, ",", BATCH_STATUS_COLUMNS[report_type], what)
            break
    if index is None:
        raise _no_header(what)
    width, i_id, i_dest = len(index), index["id"], index["dest"]
    i_status, i_text = index["status"], index["status_text"]
    statuses: dict[str, tuple[int, str]] = {}  # status token -> (value, class); few distinct values
    for line_no, raw in numbered:
        line = (raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw).rstrip("\r\n")
        parts = line.split(",")
        if len(parts) == width and '"' not in line and "\r" not in line:
            ident, status, dest, text = parts[i_id], parts[i_status], parts[i_dest], parts[i_text]
            known = statuses.get(status)
            if known is None and status.isascii() and status.isdigit() and len(status) < 19:
                known = (int(status), status_class(int(status)))
                if len(statuses) < _STATUS_CACHE:
                    statuses[status] = known
            if (
                known is not None
                and ident.isascii()
                and ident.isdigit()
                and len(ident) < 19
                and dest
                and dest == dest.strip()
                and text == text.strip()
            ):
                yield (
                    request_id, report_type, int(ident), dest, known[0], known[1], text, None,
                    loaded_at, dag_run_id,
                )  # fmt: skip
                continue
        record = _slow_record(line_no, line, index, what)
        if record is not None:
            yield (request_id, report_type, *record, None, loaded_at, dag_run_id)


def _slow_record(
    line_no: int, line: str, index: dict[str, int], what: str
) -> tuple[int, str, int, str, str] | None:
    """``(id, dest, status, status_class, status_text)`` of one queue/notify line by the parser's
    rules (csv for quotes, stripped fields, field count, integers, dest), None for a blank line."""
    if not line.strip():
        return None
    raw = line.split(",") if '"' not in line and "\r" not in line else _split(line, ",", line_no)
    fields = [f.strip() for f in raw]
    if len(fields) != len(index):
        raise SmSendReportError(
            f"{what} line {line_no} has {len(fields)} field(s), expected {len(index)}: {line[:80]!r}.",
            line=line_no,
        )
    status = _int(fields[index["status"]], "status", line_no, what)
    dest = fields[index["dest"]]
    if not dest:
        raise SmSendReportError(f"{what} line {line_no}: empty dest.", line=line_no)
    ident = _int(fields[index["id"]], "id", line_no, what)
    return ident, dest, status, status_class(status), fields[index["status_text"]]


def userlog_records(
    entries: Iterable[UserlogEntry],
    *,
    report_type: str,
    date_from: dt.date | None,
    date_to: dt.date | None,
    filter_u_id: int | None,
    loaded_at: dt.datetime,
    dag_run_id: str | None,
) -> Iterator[tuple[Any, ...]]:
    """Shape userlog entries into :data:`USERLOG_TABLE` records; extra report columns are dropped."""
    for e in entries:
        yield (
            report_type, date_from, date_to, filter_u_id, e.id, e.date, e.u_id, e.username,
            e.bill_id, e.credit, e.dest, e.sharecode, loaded_at, dag_run_id,
        )  # fmt: skip


def credit_records(
    balances: Iterable[tuple[int, Decimal]],
    *,
    snapshot_date: dt.date,
    loaded_at: dt.datetime,
    dag_run_id: str | None,
) -> Iterator[tuple[Any, ...]]:
    """Shape ``(u_id, credit)`` pairs into :data:`CREDIT_SNAPSHOT_TABLE` records."""
    for u_id, credit in balances:
        yield (snapshot_date, u_id, credit, loaded_at, dag_run_id)


# ---------------------------------------------------------------------------------- dialects


def _money_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(_MONEY_QUANTUM))


def _money_exact(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_MONEY_QUANTUM)


def _utc_aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _require_aware(value).astimezone(UTC)


def _utc_naive(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _require_aware(value).astimezone(UTC).replace(tzinfo=None)


def _utc_text(value: dt.datetime | None) -> str | None:
    return None if value is None else _require_aware(value).astimezone(UTC).isoformat(timespec="microseconds")


def _date_text(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _require_aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"Timestamp {value!r} has no time zone; report dates must be aware.")
    return value


def _identity(value: Any) -> Any:
    return value


def _last_value_cache(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    last: list[Any] = [object(), None]

    def cached(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]

    return cached


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    text = (
        value if isinstance(value, str) else (value.isoformat() if isinstance(value, dt.date) else str(value))
    )
    return (
        text.translate(_COPY_ESCAPES)
        if ("\\" in text or "\t" in text or "\n" in text or "\r" in text)
        else text
    )


def copy_text_lines(records: Iterable[tuple[Any, ...]]) -> str:
    """Records (already adapted) as PostgreSQL ``COPY`` text format: tabs, ``\\N`` for NULL, escapes."""
    return "".join("\t".join([_copy_text(v) for v in record]) + "\n" for record in records)


@dataclass(frozen=True)
class Dialect:
    """How one database family spells types, identifiers and upserts.

    :param name: ``sqlite``, ``postgres``, ``mysql`` or ``generic``.
    :param placeholder: the driver's parameter marker (``?`` or ``%s``).
    """

    name: str
    placeholder: str

    @property
    def quote_char(self) -> str:
        """The identifier quote: a backtick for MySQL, a double quote elsewhere."""
        return "`" if self.name == "mysql" else '"'

    def quote(self, identifier: str) -> str:
        """Quote a (possibly schema-qualified) identifier after checking it is a plain name."""
        parts = identifier.split(".")
        for part in parts:
            if not _IDENTIFIER.match(part):
                raise ValueError(
                    f"Invalid table or column name {identifier!r}: use letters, digits and _ only "
                    "(optionally schema.table)."
                )
        q = self.quote_char
        return ".".join(f"{q}{p}{q}" for p in parts)

    def sql_type(self, column: Column) -> str:
        """The column's SQL type in this dialect."""
        kind = column.kind
        if kind in ("bigint", "int"):
            return "INTEGER" if self.name == "sqlite" else kind.upper()
        if kind == "text":
            return "TEXT" if self.name == "sqlite" else f"VARCHAR({column.length})"
        if kind == "money":
            return "TEXT" if self.name == "sqlite" else "NUMERIC(18,4)"
        if kind == "timestamp":
            return {"sqlite": "TEXT", "postgres": "TIMESTAMPTZ", "mysql": "DATETIME(6)"}.get(
                self.name, "TIMESTAMP"
            )
        if kind == "date":
            return "TEXT" if self.name == "sqlite" else "DATE"
        raise ValueError(f"Unknown column kind {kind!r}.")

    def adapters(self, spec: TableSpec) -> list[Callable[[Any], Any]]:
        """One function per column turning a Python value into what this dialect's driver stores."""
        result: list[Callable[[Any], Any]] = []
        for column in spec.columns:
            if column.kind == "money":
                result.append(_money_text if self.name == "sqlite" else _money_exact)
            elif column.kind == "timestamp":
                result.append({"sqlite": _utc_text, "postgres": _utc_aware}.get(self.name, _utc_naive))
            elif column.kind == "date" and self.name == "sqlite":
                result.append(_date_text)
            else:
                result.append(_identity)
        return result

    def row_adapter(self, spec: TableSpec) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
        """A function adapting a whole record; identity columns are skipped, and a converter is not
        re-run for the same object as the previous row (``loaded_at`` is one object per load)."""
        converters = [
            (i, _last_value_cache(f)) for i, f in enumerate(self.adapters(spec)) if f is not _identity
        ]
        if not converters:
            return _identity

        def adapt(record: tuple[Any, ...]) -> tuple[Any, ...]:
            values = list(record)
            for index, convert in converters:
                values[index] = convert(values[index])
            return tuple(values)

        return adapt

    def create_table_sql(self, table: str, spec: TableSpec) -> str:
        """``CREATE TABLE IF NOT EXISTS`` with this dialect's types (never drops anything)."""
        cols = ",\n  ".join(
            f"{self.quote(c.name)} {self.sql_type(c)}{'' if c.nullable else ' NOT NULL'}"
            for c in spec.columns
        )
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if self.name == "mysql" else ""
        return f"CREATE TABLE IF NOT EXISTS {self.quote(table)} (\n  {cols}\n){suffix}"

    def index_name(self, table: str, suffix: str) -> str:
        """A deterministic index name within the 63-character limit of PostgreSQL."""
        base = table.split(".")[-1]
        return f"{base[: 63 - len(suffix) - 1]}_{suffix}"

    def create_index_sql(self, table: str, spec: TableSpec, *, unique: bool) -> str:
        """``CREATE [UNIQUE] INDEX`` on the key (unique) or on the replace scope."""
        columns = spec.key if unique else spec.scope
        name = self.index_name(table, "smsend_uk" if unique else "smsend_scope")
        if_not_exists = "" if self.name == "mysql" else "IF NOT EXISTS "
        cols = ", ".join(self.quote(c) for c in columns)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        if self.name == "sqlite" and "." in table:
            # SQLite: the schema qualifies the index name, and the table name stays bare.
            schema, bare = table.split(".", 1)
            return f"CREATE {kind} {if_not_exists}{self.quote(f'{schema}.{name}')} ON {self.quote(bare)} ({cols})"
        return f"CREATE {kind} {if_not_exists}{self.quote(name)} ON {self.quote(table)} ({cols})"

    def insert_sql(self, table: str, spec: TableSpec) -> str:
        """A parameterised ``INSERT`` of every column."""
        cols = ", ".join(self.quote(c) for c in spec.column_names)
        marks = ", ".join([self.placeholder] * len(spec.columns))
        return f"INSERT INTO {self.quote(table)} ({cols}) VALUES ({marks})"

    def upsert_sql(self, table: str, spec: TableSpec) -> str:
        """A parameterised insert-or-update on :attr:`TableSpec.key`."""
        insert = self.insert_sql(table, spec)
        others = [c for c in spec.column_names if c not in spec.key]
        if self.name == "mysql":
            sets = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in others)
            return f"{insert} ON DUPLICATE KEY UPDATE {sets}"
        if self.name in ("postgres", "sqlite"):
            keys = ", ".join(self.quote(c) for c in spec.key)
            sets = ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in others)
            return f"{insert} ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        raise ValueError(f"load_mode 'upsert' is not supported for the {self.name!r} dialect; use 'replace'.")

    def copy_sql(self, table: str, spec: TableSpec, *, binary: bool = False) -> str:
        """PostgreSQL ``COPY ... FROM STDIN`` of every column (text format, or binary)."""
        cols = ", ".join(self.quote(c) for c in spec.column_names)
        return f"COPY {self.quote(table)} ({cols}) FROM STDIN{' (FORMAT binary)' if binary else ''}"


def binary_copy_types(spec: TableSpec, type_oids: Sequence[int]) -> list[str] | None:
    """The PostgreSQL type names for a binary ``COPY`` of ``spec`` into columns of ``type_oids``.

    None when a column's type is not the one the records' values dump to in binary (a table created
    by hand with other types): then the load must use the text format, which the server casts.
    """
    if len(type_oids) != len(spec.columns):
        return None
    names: list[str] = []
    for column, oid in zip(spec.columns, type_oids, strict=True):
        name = _PG_BINARY_TYPES[column.kind].get(oid)
        if name is None:
            return None
        names.append(name)
    return names


#: Column kind -> {PostgreSQL type oid: type name} the kind's Python values dump to in binary.
_PG_BINARY_TYPES: dict[str, dict[int, str]] = {
    "bigint": {20: "int8"},
    "int": {23: "int4"},
    "text": {25: "text", 1043: "varchar"},
    "money": {1700: "numeric"},
    "timestamp": {1184: "timestamptz"},
    "date": {1082: "date"},
}


#: The dialect names a connection type maps to.
_CONN_TYPES = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
}


def dialect_for(conn_type: str | None, *, placeholder: str | None = None) -> Dialect:
    """The :class:`Dialect` for a connection type (``sqlite``, ``postgres``, ``mysql``, ...).

    Unknown types get a ``generic`` dialect (ANSI types, UTC timestamps, no upsert).
    """
    name = _CONN_TYPES.get((conn_type or "").lower().split("+")[0], "generic")
    default = "?" if name == "sqlite" else "%s"
    return Dialect(name=name, placeholder=placeholder or default)


def chunked(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of at most ``size`` items, pulling lazily from ``records``."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size!r}.")
    chunk: list[Any] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def scope_values(values: Sequence[Any] | Any) -> list[Any]:
    """A scope value as a list (a single value becomes a one-item list)."""
    if isinstance(values, (list, tuple, set, frozenset)):
        return list(values)
    return [values]
