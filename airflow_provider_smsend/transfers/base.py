"""The common half of the smSend -> SQL transfers: the SQL session, the transform, the transaction."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.operators.base import SmSendBaseOperator
from airflow_provider_smsend.sql.dialect import Dialect, dialect_for
from airflow_provider_smsend.sql.loader import (
    DEFAULT_CHUNK_SIZE,
    AdbcSession,
    LoadResult,
    Session,
    SqlAlchemySession,
    TableLoader,
    validate_load_mode,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Connection, Context

    from airflow_provider_smsend.sql.layouts import TableSpec

#: Connection extras passed on to libpq (ADBC's PostgreSQL driver) in the connection URI.
_LIBPQ_EXTRAS = (
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "connect_timeout", "options",
    "application_name", "target_session_attrs", "keepalives", "keepalives_idle", "client_encoding",
)  # fmt: skip
Transform = Callable[["pd.DataFrame"], "pd.DataFrame"]


class BaseSmSendToSqlOperator(SmSendBaseOperator):
    """Base of the operators that load smSend reports into a SQL table (not used directly).

    The target is any common-sql connection (``conn_id``): SQLite, PostgreSQL and MariaDB/MySQL
    get native types, upserts and (PostgreSQL) ``COPY``; other databases get ANSI types.

    :param table: the target table (``name`` or ``schema.name``); created if missing, never dropped.
    :param conn_id: the SQL connection id (any common-sql database).
    :param smsend_conn_id: the smSend connection id.
    :param load_mode: ``replace`` (default: delete the load's scope and insert, in one transaction),
        ``append`` or ``upsert`` (insert or update on the table's key; needs SQLite, PostgreSQL or
        MariaDB/MySQL).
    :param create_table: create the table when it is missing (default True).
    :param chunk_size: rows per statement of ``to_sql`` loads (MySQL/MariaDB and other SQLAlchemy
        databases; default 10 000, at most 5,000 for MariaDB's ``JSON_TABLE``). PostgreSQL and SQLite
        load the whole report in one ADBC bulk ingest, fed block by block (4 MiB of lines each).
    :param hook_params: extra keyword arguments for the SQL hook (as for ``SQLExecuteQueryOperator``).
    :param transform: a callable ``DataFrame -> DataFrame`` (or its dotted import path, e.g.
        ``"my_dags.etl.only_failures"``) applied to every frame of the report before the load: to
        filter rows, rewrite values, or fill columns a table you made has beyond the provider's. The
        report's columns (see each operator) must stay; a column it adds must exist in the table.

    Lineage and assets: with the ``apache-airflow-providers-openlineage`` package installed, each
    load reports its input (the gateway report, namespace ``smsend://<gateway host>``, named for
    the report, e.g. ``batch-status/notify``) and its output (the table, named as the database's
    hook names it, e.g. ``postgres://db.example:5432`` ``warehouse.public.sms_delivery``) through
    :meth:`get_openlineage_facets_on_complete`; no number, text or credential is in a name. Give
    ``outlets=[Asset(...)]`` to have a successful load emit an asset event; its ``extra`` holds
    ``{"table", "rows", "load_mode"}`` (see ``dags_examples/smsend_warehouse_assets.py``).
    """

    template_fields: Sequence[str] = ("table", "conn_id", "smsend_conn_id", "load_mode", "hook_params")
    ui_color = "#c6e7ff"

    #: The table layout the subclass loads.
    spec: TableSpec
    #: The row count of the last load (set by :meth:`execute`; reported in the lineage).
    loaded_rows: int | None = None

    def __init__(
        self,
        *,
        table: str,
        conn_id: str,
        smsend_conn_id: str = SmSendHook.default_conn_name,
        load_mode: str = "replace",
        create_table: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        hook_params: dict[str, Any] | None = None,
        transform: Transform | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(smsend_conn_id=smsend_conn_id, **kwargs)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
        if transform is not None and not callable(transform) and not isinstance(transform, str):
            raise TypeError(
                f"transform must be a callable or a dotted import path, got {type(transform).__name__}."
            )
        self.table = table
        self.conn_id = conn_id
        self.load_mode = load_mode
        self.create_table = create_table
        self.chunk_size = chunk_size
        self.hook_params = hook_params or {}
        self.transform = transform

    @cached_property
    def db_hook(self) -> DbApiHook:
        """The target's common-sql hook, from the connection type (as ``SQLExecuteQueryOperator``)."""
        return sql_hook(self.conn_id, self.hook_params)

    @cached_property
    def dialect(self) -> Dialect:
        """The target's dialect, from the hook's (else the connection's) type."""
        hook = self.db_hook
        conn_type = getattr(hook, "conn_type", None) or BaseHook.get_connection(self.conn_id).conn_type
        return dialect_for(conn_type, placeholder=getattr(hook, "placeholder", None))

    def open_session(self) -> Session:
        """A new session on the target: ADBC for PostgreSQL and SQLite, SQLAlchemy (``to_sql``) otherwise."""
        dialect = self.dialect
        if dialect.name == "postgres":
            import adbc_driver_postgresql.dbapi

            return AdbcSession(adbc_driver_postgresql.dbapi.connect(self._libpq_uri()), dialect)
        if dialect.name == "sqlite":
            import adbc_driver_sqlite.dbapi

            uri = self.db_hook.get_uri().replace("sqlite:///", "file:", 1)  # as SqliteHook.get_conn does
            return AdbcSession(adbc_driver_sqlite.dbapi.connect(uri), dialect)
        engine = self.db_hook.get_sqlalchemy_engine()
        return SqlAlchemySession(engine, dialect, chunk_size=self.chunk_size)

    def _libpq_uri(self) -> str:
        """The PostgreSQL connection as a libpq URI: credentials quoted; host and port as parameters
        (so a socket directory or an IPv6 address works); the connection's libpq extras kept."""
        conn = BaseHook.get_connection(self.conn_id)
        extras = {**conn.extra_dejson, **self.hook_params}
        auth = quote(conn.login or "", safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        params = {"host": conn.host or "localhost", **({"port": str(conn.port)} if conn.port else {})}
        params.update({k: str(extras[k]) for k in _LIBPQ_EXTRAS if extras.get(k) is not None})
        database = quote(conn.schema or "", safe="")
        # quote, not urlencode's default quote_plus: libpq reads "+" as a plus, not a space
        return f"postgresql://{auth + '@' if auth else ''}/{database}?{urlencode(params, quote_via=quote)}"

    @cached_property
    def transform_callable(self) -> Transform | None:
        """The ``transform`` as a callable (a dotted path is imported on first use)."""
        transform = self.transform
        if transform is None or callable(transform):
            return transform
        module, _, name = str(transform).strip().rpartition(".")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise AirflowFailException(f"transform {transform!r} cannot be imported: {exc}") from exc
        if not callable(found):
            raise AirflowFailException(f"transform {transform!r} is not callable.")
        return found

    def transformed(self, frames: Iterable[pd.DataFrame], required: Sequence[str]) -> Iterator[pd.DataFrame]:
        """``frames`` through the ``transform`` (checked: a DataFrame that keeps ``required``)."""
        import pandas as pd

        transform = self.transform_callable
        for frame in frames:
            if transform is None:
                yield frame
                continue
            out = transform(frame)
            if not isinstance(out, pd.DataFrame):
                raise AirflowFailException(
                    f"transform returned {type(out).__name__}, not a pandas DataFrame."
                )
            missing = [c for c in required if c not in out.columns]
            if missing:
                raise AirflowFailException(
                    f"transform dropped column(s) {', '.join(missing)} that the {self.spec.name} table needs."
                )
            yield out

    def _load(self, frames: Iterable[pd.DataFrame], scope: Mapping[str, Any]) -> LoadResult:
        """Open one session, read the first frame, ensure the table, load ``frames`` in one
        transaction, close. Columns beyond the layout's (a ``transform`` added them) are written too."""
        mode = validate_load_mode(self.load_mode)
        session = self.open_session()
        source = frames
        try:
            first, frames = peek(frames)
            extra = [
                c for c in (first.columns if first is not None else ()) if c not in self.spec.column_names
            ]
            loader = TableLoader(session, self.table, self.spec, logger=self.log)
            loader.ensure_table(create=self.create_table, unique_key=mode == "upsert", extra=extra)
            self.log.info(
                "Loading smSend %s report into %s (%s, %s, %s)",
                self.spec.name, self.table, self.dialect.name, mode, session.method,
            )  # fmt: skip
            return loader.load(frames, mode=mode, scope=scope, extra=extra)
        finally:
            close_source(source)
            session.close()

    def execute(self, context: Context) -> Any:
        """Run the load; then note its row count for lineage and in the outlets' asset events."""
        result = super().execute(context)
        rows = result.get("rows") if isinstance(result, dict) else None
        self.loaded_rows = rows if isinstance(rows, int) else None
        self._annotate_asset_events(context, result if isinstance(result, dict) else {})
        return result

    def _annotate_asset_events(self, context: Context, result: Mapping[str, Any]) -> None:
        """Give each outlet asset's event the load's table, row count and mode (no row data)."""
        from airflow.sdk import Asset

        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        events = context.get("outlet_events") if assets else None
        if events is None:
            return
        extra = {"table": self.table, "rows": self.loaded_rows, "load_mode": result.get("load_mode")}
        for asset in assets:
            events[asset].extra.update(extra)

    def openlineage_inputs(self) -> list[tuple[str, str]]:
        """What the load reads, as OpenLineage ``(namespace, name)`` pairs: each transfer names its
        report (:meth:`gateway_dataset`) or table (:meth:`sql_dataset`); none by default."""
        return []

    def openlineage_extra_outputs(self) -> list[tuple[str, str]]:
        """Tables the load writes besides ``table``, as OpenLineage ``(namespace, name)`` pairs; none by default."""
        return []

    def gateway_dataset(self, report: str, base_url: str | None = None) -> tuple[str, str]:
        """The OpenLineage id of a gateway report: ``("smsend://<host[:port]>", report)``.

        :param report: the report, e.g. ``batch-status/notify`` or ``userlog-get/credits``.
        :param base_url: the service's base URL (default: the HTTP API's, the connection's host).
        """
        parts = urlsplit(base_url or self.client.base_url)  # host and port only: no credentials, no path
        host = parts.hostname or ""
        return (f"smsend://{host}:{parts.port}" if parts.port else f"smsend://{host}"), report

    def sql_dataset(self, conn_id: str, table: str) -> tuple[str, str]:
        """The OpenLineage id of a table on a SQL connection (:func:`openlineage_table`)."""
        connection = BaseHook.get_connection(conn_id)
        hook = self.db_hook if conn_id == self.conn_id else connection.get_hook()
        return openlineage_table(hook, connection, table)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The load's OpenLineage inputs (the gateway report) and output (the table, with its
        columns and the rows loaded); None when the openlineage provider is not installed.

        Called by the openlineage provider after a successful run.

        :param task_instance: the finished task instance (unused: the operator holds what it loaded).
        """
        try:
            from airflow.providers.common.compat.openlineage.facet import (
                Dataset,
                OutputDataset,
                OutputStatisticsOutputDatasetFacet,
                SchemaDatasetFacet,
                SchemaDatasetFacetFields,
            )
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        namespace, name = self.sql_dataset(self.conn_id, self.table)
        schema = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=c.name, type=c.kind) for c in self.spec.columns]
        )
        statistics: dict[str, Any] = {}
        if self.loaded_rows is not None:
            statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=self.loaded_rows)
        output = OutputDataset(
            namespace=namespace, name=name, facets={"schema": schema}, outputFacets=statistics
        )
        outputs = [output, *(Dataset(namespace=ns, name=n) for ns, n in self.openlineage_extra_outputs())]
        inputs = [Dataset(namespace=ns, name=report) for ns, report in self.openlineage_inputs()]
        return OperatorLineage(inputs=inputs, outputs=outputs)

    @staticmethod
    def run_id(context: Context) -> str | None:
        """The DAG run id of ``context`` (stored in each row's ``dag_run_id``)."""
        run_id = context.get("run_id")
        return str(run_id) if run_id else None

    @staticmethod
    def now() -> dt.datetime:
        """The load timestamp (UTC), one per load."""
        return dt.datetime.now(dt.UTC)


def sql_hook(conn_id: str, hook_params: Mapping[str, Any] | None = None) -> DbApiHook:
    """The common-sql hook of ``conn_id``, its extras and ``hook_params`` passed on.

    :raises AirflowFailException: if the connection is not a SQL database.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    connection = BaseHook.get_connection(conn_id)
    params = {**connection.extra_dejson, **(hook_params or {})}
    try:
        hook = connection.get_hook(hook_params=params)
    except TypeError:  # a hook that takes none of these extras as arguments: not a common-sql one
        hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise AirflowFailException(
            f"Connection {conn_id!r} ({connection.conn_type}) is not a SQL database: "
            f"{type(hook).__name__} is no common-sql DbApiHook. Use a SQLite, PostgreSQL or MySQL connection."
        )
    return hook


def query_rows(
    conn_id: str, sql: str, *, required: str, what: str = "recipients_sql"
) -> list[dict[str, Any]]:
    """The rows of ``sql`` on the common-sql connection ``conn_id``, as dicts by column name.

    Rows read this way never reach a template field, XCom or a log: how an operator keeps a list of
    recipients out of Airflow's metadata (``recipients_sql``).

    :param required: a column the rows must have (the phone number's).
    :param what: the argument that gave the query, for the error.
    :raises AirflowFailException: if the connection is not a SQL database, or ``required`` is missing.
    """
    conn = sql_hook(conn_id).get_conn()
    try:
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or ()]
            if required not in names:
                raise AirflowFailException(f"{what} returns no column {required!r} (columns: {names!r}).")
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()
    finally:
        conn.close()


def openlineage_table(hook: DbApiHook, connection: Connection, table: str) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of ``table`` (``name`` or ``schema.name``) on ``hook``'s database.

    The hook's own ``get_openlineage_database_info`` and ``get_openlineage_default_schema`` give the
    namespace and the name's parts where it has them (PostgreSQL: ``postgres://host:5432``,
    ``database.schema.table``; MySQL: ``mysql://host:3306``, ``database.table``); a hook without them
    (SQLite) gives ``<conn type>://<host>`` (SQLite: the file's path) and the table as written.
    Never the connection's login or password.
    """
    schema, _, name = table.rpartition(".")
    try:
        info = hook.get_openlineage_database_info(connection)
    except Exception:  # lineage must never fail a load: a hook that cannot tell falls back
        info = None
    if info is None:
        if connection.conn_type == "sqlite":
            return f"sqlite://{connection.host or ''}", table
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        return f"{connection.conn_type}://{DbApiHook.get_openlineage_authority_part(connection)}", table
    from airflow.providers.openlineage.sqlparser import SQLParser  # installed: the hook's info comes from it

    namespace = SQLParser.create_namespace(info)
    database = info.database
    if not schema:
        try:
            schema = hook.get_openlineage_default_schema() or ""
        except Exception:
            schema = ""
        if not schema and not database:  # MySQL: no schemas, the connection's database holds the table
            schema = connection.schema or ""
    return namespace, ".".join(part for part in (database, schema, name) if part)


def peek(frames: Iterable[pd.DataFrame]) -> tuple[pd.DataFrame | None, Iterator[pd.DataFrame]]:
    """The first frame (None if there is none) and all the frames again, the first included; closing
    the second closes ``frames`` (a generator holding an open HTTP stream or a fetch pool)."""
    iterator = iter(frames)
    first = next(iterator, None)

    def again() -> Iterator[pd.DataFrame]:
        try:
            if first is not None:
                yield first
                yield from iterator
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                close()

    return first, again()


def close_source(frames: object) -> None:
    """Close a generator of frames (the HTTP stream or the fetch pool it holds) if it can be."""
    close = getattr(frames, "close", None)
    if callable(close):
        close()


def as_list(value: object) -> list[str]:
    """A templated list: a list/tuple, or a string of comma/space separated items."""
    if value is None:
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.replace(",", " ").split()]
    elif isinstance(value, Iterable):
        items = [str(v).strip() for v in value]
    else:
        items = [str(value).strip()]
    items = [v for v in items if v]
    return list(dict.fromkeys(items))  # unique, in order


def as_date(value: object, *, what: str) -> dt.date | None:
    """A templated date: ``YYYY-MM-DD`` text, a date or a datetime (its date), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise AirflowFailException(f"{what} must be a date YYYY-MM-DD, got {value!r}.") from exc
