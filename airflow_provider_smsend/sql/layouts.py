"""Report table layouts, with no Airflow inside.

Five tables receive the gateway's reports and the provider's own records (see :mod:`airflow_provider_smsend.transfers`):

* :data:`BATCH_STATUS_TABLE` - batch-status ``queue``/``notify``/``mnc`` rows, one per message;
* :data:`USERLOG_TABLE` - userlog-get ``credits``/``recv_add``/``recv_del`` operations;
* :data:`CREDIT_SNAPSHOT_TABLE` - dated credit-get balances, one per client and day;
* :data:`OUTCOMES_TABLE` - the send ledger's per-recipient outcomes of a job (one row per
  recipient: masked number, a stable key, status, cost, error code, request id, try);
* :data:`INBOUND_TABLE` - received SMS (receiveSms), one row per message id: masked numbers, a
  stable sender key, reception time, the text only on request, the opt-out keyword it is.

Each is one table ("wide": every column on every row), except a batch-status table that the
provider creates in PostgreSQL, which is *compact*: three objects,

* ``{table}_loads`` - one row per loaded report: ``load_id`` (identity), ``request_id``,
  ``report_type``, ``loaded_at`` (UTC), ``dag_run_id``, ``row_count``; indexed on
  ``(request_id, report_type)``;
* ``{table}_rows`` - one row per message: ``load_id``, ``id``, ``dest``, ``status``,
  ``status_text``, ``netcode``; a BRIN index on ``load_id`` (rows of one load are written together,
  so a tiny block-range index finds them; ``autosummarize`` keeps it current);
* ``{table}`` - a VIEW joining both, with the wide layout's columns (``status_class`` computed):
  what users query. It is read-only: delete old reports from both tables by ``load_id``.

The per-load values are stored once per load instead of once per row and no B-tree is kept per
row: PostgreSQL ingests a big report about twice as fast as into the wide table
(docs/benchmarks.md). Tables made by provider 0.1 (wide) and 0.2 (wide, or compact) keep loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_smsend.client.inbound_rules import MAX_STORED_TEXT
from airflow_provider_smsend.client.reports import FIELD_LIMITS
from airflow_provider_smsend.sql.dialect import dialect_for

_DIALECT = dialect_for("postgres")


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
        Column("dest", "text", FIELD_LIMITS["dest"], nullable=False),
        Column("status", "int", nullable=False),
        Column("status_class", "text", 16, nullable=False),
        Column("status_text", "text", FIELD_LIMITS["status_text"]),
        Column("netcode", "text", FIELD_LIMITS["netcode"]),
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
        Column("username", "text", FIELD_LIMITS["username"]),
        Column("bill_id", "bigint"),
        Column("credit", "money"),
        Column("dest", "text", FIELD_LIMITS["dest"]),
        Column("sharecode", "text", FIELD_LIMITS["sharecode"]),
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

OUTCOMES_TABLE = TableSpec(
    name="send outcomes",
    columns=(
        Column("job_key", "text", 255, nullable=False),
        Column("recipient", "text", 32, nullable=False),
        Column("recipient_key", "text", 16, nullable=False),
        Column("status", "text", 16, nullable=False),
        Column("cost", "money"),
        Column("error_code", "text", 64),
        Column("request_id", "text", 64),
        Column("try_number", "int"),
        Column("updated_at", "timestamp"),
        *_META,
    ),
    key=("job_key", "recipient_key"),
    scope=("job_key",),
)


INBOUND_TABLE = TableSpec(
    name="received SMS",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("rcpt", "text", 32, nullable=False),
        Column("sharecode", "text", FIELD_LIMITS["sharecode"], nullable=False),
        Column("sender", "text", 32, nullable=False),
        Column("sender_key", "text", 16, nullable=False),
        Column("received_at", "timestamp", nullable=False),
        Column("text", "text", MAX_STORED_TEXT),
        Column("opt_out", "text", 64),
        *_META,
    ),
    key=("id",),
    scope=("id",),
)


#: The data columns of the compact rows table, in the view's order.
ROW_COLUMNS = ("id", "dest", "status", "status_text", "netcode")
LOAD_COLUMNS = ("load_id", "request_id", "report_type", "loaded_at", "dag_run_id", "row_count")
VIEW_COLUMNS = (
    "request_id", "report_type", "id", "dest", "status", "status_class", "status_text", "netcode",
    "loaded_at", "dag_run_id",
)  # fmt: skip


class CompactNames:
    """The quoted names of a compact table's objects.

    :param table: the view users query, ``name`` or ``schema.name``.
    """

    #: The longest table name whose objects' names fit PostgreSQL's 63 characters.
    MAX_NAME = 63 - len("_loads_scope")

    @classmethod
    def fits(cls, table: str) -> bool:
        """True if ``table``'s objects (``_rows``, ``_loads``, their indexes) have room for their names."""
        return len(table.rpartition(".")[2]) <= cls.MAX_NAME

    def __init__(self, table: str) -> None:
        _DIALECT.quote(table)  # validates the name
        schema, _, bare = table.rpartition(".")
        if not self.fits(table):
            raise ValueError(
                f"Table name {bare!r} is too long for the compact PostgreSQL layout (at most "
                f"{self.MAX_NAME} characters: {bare}_loads_scope must fit PostgreSQL's 63)."
            )
        prefix = f"{schema}." if schema else ""
        self.table = table
        self.rows_name = f"{prefix}{bare}_rows"
        self.loads_name = f"{prefix}{bare}_loads"
        self.view = _DIALECT.quote(table)
        self.rows = _DIALECT.quote(self.rows_name)
        self.loads = _DIALECT.quote(self.loads_name)
        self.rows_index = _DIALECT.quote(f"{bare}_rows_load")
        self.rows_unique = _DIALECT.quote(f"{bare}_rows_uk")
        self.loads_index = _DIALECT.quote(f"{bare}_loads_scope")


def relation_kind(session: Any, name: str) -> str | None:
    """PostgreSQL: ``table``, ``view``, another pg_class kind letter, or None when ``name`` does not exist.

    :param session: a :class:`~airflow_provider_smsend.sql.loader.Session`.
    """
    # to_regclass parses the quoted form: case and schema are kept as written
    found = session.query(
        f"SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass({session.dialect.marks(1)[0]})",
        (_DIALECT.quote(name),),
    )
    if not found:
        return None
    kind = found[0][0].decode() if isinstance(found[0][0], bytes) else str(found[0][0])
    return {"r": "table", "p": "table", "v": "view"}.get(kind, kind)


def _status_class_sql(column: str) -> str:
    return (
        f"CAST(CASE {column} / 100 WHEN 1 THEN 'pending' WHEN 2 THEN 'success' WHEN 3 THEN 'failure' "
        "ELSE 'unknown' END AS VARCHAR(16))"
    )


def compact_ddl(names: CompactNames) -> list[str]:
    """The statements creating a compact table's objects (``IF NOT EXISTS`` where PostgreSQL has it)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {names.loads} (\n"
        "  load_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "  request_id VARCHAR(64) NOT NULL,\n  report_type VARCHAR(16) NOT NULL,\n"
        "  loaded_at TIMESTAMPTZ NOT NULL,\n  dag_run_id VARCHAR(250),\n  row_count BIGINT NOT NULL DEFAULT 0\n)",
        f"CREATE INDEX IF NOT EXISTS {names.loads_index} ON {names.loads} (request_id, report_type)",
        f"CREATE TABLE IF NOT EXISTS {names.rows} (\n"
        "  load_id BIGINT NOT NULL,\n  id BIGINT NOT NULL,\n  dest VARCHAR(32) NOT NULL,\n"
        "  status INTEGER NOT NULL,\n  status_text VARCHAR(255),\n  netcode VARCHAR(64)\n)",
        f"CREATE INDEX IF NOT EXISTS {names.rows_index} ON {names.rows} USING brin (load_id) "
        "WITH (autosummarize = on)",
        f"CREATE OR REPLACE VIEW {names.view} AS SELECT l.request_id, l.report_type, r.id, r.dest, r.status, "
        f"{_status_class_sql('r.status')} AS status_class, r.status_text, r.netcode, l.loaded_at, l.dag_run_id "
        f"FROM {names.rows} r JOIN {names.loads} l ON l.load_id = r.load_id",
    ]
