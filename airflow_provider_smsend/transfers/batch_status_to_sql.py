"""SmSendBatchStatusToSqlOperator: batch-status reports (queue, notify, mnc) -> a SQL table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.pgreport import CompactBatchStatusLoader, CompactNames
from airflow_provider_smsend.client.reports import BATCH_STATUS_COLUMNS, iter_batch_status
from airflow_provider_smsend.client.sqlload import LoadResult, validate_load_mode
from airflow_provider_smsend.client.tables import (
    BATCH_STATUS_TABLE,
    FAST_BATCH_STATUS_TYPES,
    batch_status_records,
    fast_batch_status_records,
)
from airflow_provider_smsend.transfers.base import BaseSmSendToSqlOperator, airflow_error, as_list

if TYPE_CHECKING:
    import datetime as dt

    from airflow.sdk import Context


class SmSendBatchStatusToSqlOperator(BaseSmSendToSqlOperator):
    """Load the batch-status report of one or more request ids into a SQL table.

    The CSV report (``queue``, ``notify`` or ``mnc``) is streamed and parsed by header, then
    written in chunks inside ONE transaction: with ``load_mode="replace"`` (the default) the rows
    of the same request ids and report type are deleted first, so loading a report twice leaves
    the same rows, and a malformed line anywhere rolls the whole load back. The short ``mnc``
    rows of the gateway's own example are accepted (NOTES.md).

    PostgreSQL: a table this operator creates is a VIEW named ``table`` with the columns below,
    over ``{table}_rows`` (one row per message, BRIN-indexed on ``load_id``) and ``{table}_loads``
    (one row per loaded report: request id, report type, load time, run id, row count); the
    report's plain lines (ASCII, unquoted) are streamed into ``COPY`` as they came (see
    :mod:`~airflow_provider_smsend.client.pgreport`), at more than half the rate at which
    PostgreSQL ingests the CSV file itself (docs/benchmarks.md); other lines are parsed first. The
    view is read-only: delete old reports from ``{table}_rows`` and ``{table}_loads`` by
    ``load_id``. With ``upsert``, the report's load row takes the last load time and run id. A
    table created by hand (or by provider 0.1), and a name too long for the ``_loads_scope`` index
    (over 51 characters), keep the wide layout: one table, parsed rows, a binary ``COPY``.

    Table columns: ``request_id``, ``report_type``, ``id`` (BIGINT), ``dest`` (text, with ``+``),
    ``status`` (INTEGER), ``status_class`` (pending/success/failure), ``status_text``, ``netcode``,
    ``loaded_at`` (UTC), ``dag_run_id``. Upsert key: ``(request_id, report_type, id)``.

    Returns (XCom) ``{"rows", "table", "load_mode", "request_ids", "report_type", "deleted",
    "method", "seconds"}``.

    :param request_ids: one request id, a list, or a comma separated string (templated).
    :param report_type: ``notify`` (default), ``queue`` or ``mnc`` (templated).
    :param table: the target table (default ``smsend_batch_status``).
    :param conn_id: the SQL connection id (any common-sql database).

    Other parameters: see :class:`~airflow_provider_smsend.transfers.base.BaseSmSendToSqlOperator`.

    Example::

        from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

        load_status = SmSendBatchStatusToSqlOperator(
            task_id="load_delivery_status",
            request_ids="{{ ti.xcom_pull(task_ids='send_sms')['request_id'] }}",
            report_type="notify",
            table="sms_delivery_status",
            conn_id="warehouse",
        )
    """

    template_fields: Sequence[str] = (*BaseSmSendToSqlOperator.template_fields, "request_ids", "report_type")
    spec = BATCH_STATUS_TABLE

    def __init__(
        self,
        *,
        request_ids: str | Sequence[str],
        report_type: str = "notify",
        table: str = "smsend_batch_status",
        conn_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, conn_id=conn_id, **kwargs)
        self.request_ids = request_ids
        self.report_type = report_type

    def _fast_path(self, report_type: str) -> bool:
        """PostgreSQL and a one-row-per-line report: parse and shape in one loop (no mnc rows)."""
        return self.dialect.name == "postgres" and report_type in FAST_BATCH_STATUS_TYPES

    def _records(
        self, request_ids: list[str], report_type: str, loaded_at: dt.datetime, run_id: str | None
    ) -> Iterator[tuple[Any, ...]]:
        client = self.smsend_hook.client
        fast = self._fast_path(report_type)
        for request_id in request_ids:
            with client.stream_batch_status(request_id, report_type) as lines:
                if fast:  # loaded_at is UTC-aware already: the records are what psycopg stores
                    yield from fast_batch_status_records(
                        lines, request_id=request_id, report_type=report_type, loaded_at=loaded_at,
                        dag_run_id=run_id,
                    )  # fmt: skip
                    continue
                rows = iter_batch_status(lines, report_type)
                yield from batch_status_records(
                    rows,
                    request_id=request_id,
                    report_type=report_type,
                    loaded_at=loaded_at,
                    dag_run_id=run_id,
                )

    def _report_chunks(
        self, request_ids: list[str], report_type: str
    ) -> Iterator[tuple[str, Iterator[bytes], str | None]]:
        client = self.smsend_hook.client
        for request_id in request_ids:
            with client.stream_batch_status_blocks(request_id, report_type) as (chunks, content_type):
                yield request_id, chunks, content_type

    def _load_compact(
        self, request_ids: list[str], report_type: str, run_id: str | None
    ) -> LoadResult | None:
        """PostgreSQL's compact layout (a new table, or a view this provider made); None for a table."""
        mode = validate_load_mode(self.load_mode)
        if not CompactNames.fits(self.table):
            self.log.info(
                "Wide layout for %s: the compact layout's names need a table name of at most %d characters",
                self.table, CompactNames.MAX_NAME,
            )  # fmt: skip
            return None
        conn = self.db_hook.get_conn()
        try:
            if CompactBatchStatusLoader.layout(conn, self.table) == "wide":
                return None
            loader = CompactBatchStatusLoader(conn, self.table, logger=self.log)
            loader.ensure(create=self.create_table, unique_key=mode == "upsert")
            self.log.info(
                "Loading smSend batch-status reports into %s (postgres compact layout, %s)", self.table, mode
            )
            return loader.load(
                self._report_chunks(request_ids, report_type), report_type, request_ids=request_ids, mode=mode,
                loaded_at=self.now(), dag_run_id=run_id,
            )  # fmt: skip
        except SmSendError as exc:
            raise airflow_error(exc) from exc
        finally:
            conn.close()

    def execute(self, context: Context) -> dict[str, Any]:
        request_ids = as_list(self.request_ids)
        if not request_ids:
            raise AirflowFailException("No request id to load: request_ids rendered empty.")
        report_type = str(self.report_type).strip().lower()
        if report_type not in BATCH_STATUS_COLUMNS:
            raise AirflowFailException(
                f"report_type must be one of {', '.join(BATCH_STATUS_COLUMNS)}; got {self.report_type!r}."
            )
        self.log.info(
            "Loading the %s batch-status report of %d request id(s): %s",
            report_type,
            len(request_ids),
            request_ids,
        )
        result = None
        if self.dialect.name == "postgres":
            result = self._load_compact(request_ids, report_type, self.run_id(context))
        if result is None:
            records = self._records(request_ids, report_type, self.now(), self.run_id(context))
            scope = {"request_id": request_ids, "report_type": report_type}
            result = self._load(records, scope, adapted=self._fast_path(report_type))
        return {**result.as_dict(), "request_ids": request_ids, "report_type": report_type}
