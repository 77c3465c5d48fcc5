"""The common half of the smSend -> SQL transfers: the SQL hook, the dialect, the transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.sqlload import (
    DEFAULT_CHUNK_SIZE,
    LoadResult,
    TableLoader,
    validate_load_mode,
)
from airflow_provider_smsend.client.tables import Dialect, TableSpec, dialect_for
from airflow_provider_smsend.hooks.smsend import SmSendHook

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context


class BaseSmSendToSqlOperator(BaseOperator):
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
    :param chunk_size: rows per batch; memory is bounded by it (default 50 000).
    :param hook_params: extra keyword arguments for the SQL hook (as for ``SQLExecuteQueryOperator``).
    """

    template_fields: Sequence[str] = ("table", "conn_id", "smsend_conn_id", "load_mode", "hook_params")
    ui_color = "#c6e7ff"

    #: The table layout the subclass loads.
    spec: TableSpec

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}.")
        self.table = table
        self.conn_id = conn_id
        self.smsend_conn_id = smsend_conn_id
        self.load_mode = load_mode
        self.create_table = create_table
        self.chunk_size = chunk_size
        self.hook_params = hook_params or {}

    @cached_property
    def smsend_hook(self) -> SmSendHook:
        """The smSend hook (built on first use, not at DAG parse)."""
        return SmSendHook(smsend_conn_id=self.smsend_conn_id)

    @cached_property
    def db_hook(self) -> DbApiHook:
        """The target's common-sql hook, from the connection type (as ``SQLExecuteQueryOperator``)."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        connection = BaseHook.get_connection(self.conn_id)
        params = {**connection.extra_dejson, **self.hook_params}
        hook = connection.get_hook(hook_params=params)
        if not isinstance(hook, DbApiHook):
            raise AirflowFailException(
                f"Connection {self.conn_id!r} ({connection.conn_type}) is not a SQL database: "
                f"{type(hook).__name__} is no common-sql DbApiHook. Use a SQLite, PostgreSQL or MySQL connection."
            )
        return hook

    @cached_property
    def dialect(self) -> Dialect:
        """The target's dialect, from the hook's (else the connection's) type."""
        hook = self.db_hook
        conn_type = getattr(hook, "conn_type", None) or BaseHook.get_connection(self.conn_id).conn_type
        return dialect_for(conn_type, placeholder=getattr(hook, "placeholder", None))

    def _load(
        self, records: Iterable[tuple[Any, ...]], scope: Mapping[str, Any], *, adapted: bool = False
    ) -> LoadResult:
        """Open one DB connection, ensure the table, load ``records`` in one transaction, close.

        :param adapted: the records are in the driver's form already (see :meth:`TableLoader.load`).
        """
        mode = validate_load_mode(self.load_mode)
        conn = self.db_hook.get_conn()
        try:
            loader = TableLoader(
                conn, self.dialect, self.table, self.spec, chunk_size=self.chunk_size, logger=self.log
            )
            loader.ensure_table(create=self.create_table, unique_key=mode == "upsert")
            self.log.info(
                "Loading smSend %s report into %s (%s, %s) in chunks of %d",
                self.spec.name, self.table, self.dialect.name, mode, self.chunk_size,
            )  # fmt: skip
            return loader.load(records, mode=mode, scope=scope, adapted=adapted)
        except SmSendError as exc:
            raise airflow_error(exc) from exc
        finally:
            conn.close()

    @staticmethod
    def run_id(context: Context) -> str | None:
        """The DAG run id of ``context`` (stored in each row's ``dag_run_id``)."""
        run_id = context.get("run_id")
        return str(run_id) if run_id else None

    @staticmethod
    def now() -> dt.datetime:
        """The load timestamp (UTC), one per load."""
        return dt.datetime.now(dt.UTC)


def airflow_error(exc: SmSendError) -> Exception:
    """A retryable smSend error as is (Airflow retries); a final one as ``AirflowFailException``."""
    if getattr(exc, "retryable", False):
        return exc
    return AirflowFailException(f"{type(exc).__name__}: {exc}")


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
