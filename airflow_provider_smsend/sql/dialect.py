"""SQL dialects: how each database family spells types, identifiers, parameters and upserts.

Airflow-free. The one map from an Airflow connection type to a dialect (:func:`dialect_for`), used
by the report loader and the send ledger alike. Types are exact (docs/gateway.md, "Reports"):
ids and statuses are integers, numbers stay text with their ``+``, money is ``NUMERIC(18,4)``,
report dates are stored in UTC: PostgreSQL ``TIMESTAMPTZ``; MariaDB/MySQL ``DATETIME(6)`` holding
UTC; SQLite ISO 8601 text in UTC (``2024-07-01T08:00:00.000000+00:00``, sortable). SQLite has no
exact decimal type (its NUMERIC affinity turns text into a float), so money is stored there as
text with 4 decimals.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_smsend.sql.layouts import Column, TableSpec

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class Dialect:
    """How one database family spells types, identifiers and upserts.

    :param name: ``sqlite``, ``postgres``, ``mysql`` or ``generic``.
    :param placeholder: the driver's parameter marker (``?``, ``%s``, or ``$`` for numbered ``$1``...).
    """

    name: str
    placeholder: str

    def marks(self, count: int, start: int = 1) -> list[str]:
        """``count`` parameter markers (numbered from ``start`` for ``$``-style drivers such as ADBC's)."""
        if self.placeholder == "$":
            return [f"${i}" for i in range(start, start + count)]
        return [self.placeholder] * count

    def with_placeholder(self, placeholder: str) -> Dialect:
        """The same dialect for a driver with another parameter marker."""
        return Dialect(name=self.name, placeholder=placeholder)

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

    def create_table_sql(self, table: str, spec: TableSpec) -> str:
        """``CREATE TABLE IF NOT EXISTS`` with this dialect's types (never drops anything)."""
        cols = ",\n  ".join(
            f"{self.quote(c.name)} {self.sql_type(c)}{'' if c.nullable else ' NOT NULL'}"
            for c in spec.columns
        )
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if self.name == "mysql" else ""
        return f"CREATE TABLE IF NOT EXISTS {self.quote(table)} (\n  {cols}\n){suffix}"

    def index_name(self, table: str, suffix: str) -> str:
        """A deterministic index name within the 63 bytes PostgreSQL allows.

        ``{table}_{suffix}`` when it fits. Else, on PostgreSQL and SQLite, which name indexes per
        schema, the table name cut short with 8 hex digits of its SHA-256 before the suffix: two long
        names sharing their first characters never share an index name (the second ``CREATE INDEX IF
        NOT EXISTS`` would be skipped, the second table left without its index). MySQL names indexes
        per table: there the name is only cut short, as in 0.2.
        """
        base = table.split(".")[-1]
        name = f"{base}_{suffix}"
        if len(name.encode("utf-8")) <= 63:
            return name
        if self.name == "mysql":
            return f"{base[: 63 - len(suffix) - 1]}_{suffix}"
        digest = hashlib.sha256(base.encode("utf-8")).hexdigest()[:8]
        tail = f"_{digest}_{suffix}"
        while len(f"{base}{tail}".encode()) > 63:
            base = base[:-1]
        return f"{base}{tail}"

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

    def upsert_clause(self, spec: TableSpec, columns: Sequence[str]) -> str:
        """MySQL: the ``ON DUPLICATE KEY UPDATE`` of an insert of ``columns`` (the key's unique index decides)."""
        if self.name != "mysql":
            raise ValueError(f"No ON DUPLICATE KEY clause in the {self.name!r} dialect.")
        sets = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in columns if c not in spec.key)
        return f"ON DUPLICATE KEY UPDATE {sets}"

    def insert_if_absent_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """An insert of one row of ``columns`` that does nothing when a row with the same ``key`` exists.

        ``table`` and the column names are used as given (checked, quoted or not, by the caller). Its parameters are the row's values, then (``generic`` dialect only: ``INSERT … SELECT …
        WHERE NOT EXISTS``, where a concurrent insert may still fail on the key) the key's values.
        The affected row count tells whether the row was inserted.
        """
        cols = ", ".join(columns)
        values = ", ".join(self.marks(len(columns)))
        if self.name in ("postgres", "sqlite"):
            return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT DO NOTHING"
        if self.name == "mysql":
            # IGNORE also turns data errors into warnings: callers check lengths first.
            return f"INSERT IGNORE INTO {table} ({cols}) VALUES ({values})"
        marks = self.marks(len(key), len(columns) + 1)
        where = " AND ".join(f"{c} = {m}" for c, m in zip(key, marks, strict=True))
        return f"INSERT INTO {table} ({cols}) SELECT {values} WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {where})"


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


def scope_values(values: Sequence[Any] | Any) -> list[Any]:
    """A scope value as a list (a single value becomes a one-item list)."""
    if isinstance(values, (list, tuple, set, frozenset)):
        return list(values)
    return [values]
