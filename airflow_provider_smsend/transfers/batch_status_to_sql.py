"""SmSendBatchStatusToSqlOperator: batch-status reports (queue, notify, mnc) -> a SQL table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.batch_rules import (
    FETCH_CONCURRENCY,
    describe_request_ids,
    validate_concurrency,
)
from airflow_provider_smsend.client.reports import BATCH_STATUS_COLUMNS, BATCH_STATUS_FRAME_COLUMNS
from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE, CompactNames
from airflow_provider_smsend.sql.loader import (
    CompactBatchStatusLoader,
    LoadResult,
    TableLayoutError,
    constant,
    validate_load_mode,
)
from airflow_provider_smsend.transfers.base import (
    BaseSmSendToSqlOperator,
    as_list,
    close_source,
    peek,
)

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd
    from airflow.sdk import Context


class SmSendBatchStatusToSqlOperator(BaseSmSendToSqlOperator):
    """Load the batch-status reports of one or more request ids into a SQL table.

    A campaign has one request id per message: the reports are fetched ``concurrency`` at a time
    (each under the read-only retry policy), parsed together through pandas
    (:func:`~airflow_provider_smsend.client.reports.read_batch_status`) and loaded in ONE
    transaction. With ``load_mode="replace"`` (the default) the rows of the same request ids and
    report type are deleted first, so loading a report twice leaves the same rows, and a malformed
    line anywhere rolls the whole load back. One big report (a single request id) is streamed in
    blocks of lines, so memory stays bounded. The short ``mnc`` rows of the gateway's own example
    are accepted (docs/gateway.md).

    PostgreSQL loads through ADBC bulk ingest (binary ``COPY``); a table this operator creates
    there is a VIEW named ``table`` over ``{table}_rows`` and ``{table}_loads``
    (:mod:`~airflow_provider_smsend.sql.layouts`, "compact"); a table created by hand or by
    provider 0.1, and a name over 51 characters, keep the wide layout. SQLite loads through ADBC,
    MySQL/MariaDB through ``DataFrame.to_sql``.

    Table columns: ``request_id``, ``report_type``, ``id`` (BIGINT), ``dest`` (text, with ``+``),
    ``status`` (INTEGER), ``status_class`` (pending/success/failure/unknown), ``status_text``,
    ``netcode``, ``loaded_at`` (UTC), ``dag_run_id``. Upsert key: ``(request_id, report_type, id)``.
    A ``transform`` sees the report's frame: ``request_id``, ``id``, ``dest``, ``status``,
    ``status_text``, ``netcode``.

    Returns (XCom) ``{"rows", "table", "load_mode", "requests" (how many request ids), "report_type",
    "deleted", "method", "seconds"}``.

    :param request_ids: one request id, a list, or a comma separated string (templated).
    :param report_type: ``notify`` (default), ``queue`` or ``mnc`` (templated).
    :param table: the target table (default ``smsend_batch_status``).
    :param conn_id: the SQL connection id (any common-sql database).
    :param concurrency: reports fetched at once: an integer from 1 to 64 (default 16); each holds a
        connection to the gateway.

    Other parameters: see :class:`~airflow_provider_smsend.transfers.base.BaseSmSendToSqlOperator`.

    Example::

        from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

        load_status = SmSendBatchStatusToSqlOperator(
            task_id="load_delivery_status",
            request_ids=send.output["request_ids"],
            report_type="notify",
            table="sms_delivery_status",
            conn_id="warehouse",
            concurrency=32,
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
        concurrency: int = FETCH_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, conn_id=conn_id, **kwargs)
        self.concurrency = validate_concurrency(concurrency)
        self.request_ids = request_ids
        self.report_type = report_type

    def _frames(self, request_ids: list[str], report_type: str) -> Iterator[pd.DataFrame]:
        """The reports' frames (transformed): one streamed report, or many fetched concurrently."""
        client = self.client
        if len(request_ids) == 1:
            with client.stream_batch_status(request_ids[0], report_type) as frames:
                yield from self.transformed(frames, BATCH_STATUS_FRAME_COLUMNS)
            return
        frames = client.batch_status_frames(request_ids, report_type, concurrency=self.concurrency)
        yield from self.transformed(frames, BATCH_STATUS_FRAME_COLUMNS)

    def _wide(
        self, frames: Iterator[pd.DataFrame], report_type: str, loaded_at: dt.datetime, run_id: str | None
    ) -> Iterator[pd.DataFrame]:
        """Report frames with the wide layout's load columns added."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        for frame in frames:
            out = frame.copy()
            rows = len(out)
            out["report_type"] = constant(report_type, rows, pa.string())
            status = pa.array(out["status"].astype("int64[pyarrow]"))
            klass = pc.case_when(
                pc.make_struct(*(pc.equal(pc.divide(status, 100), c) for c in (1, 2, 3))),
                "pending", "success", "failure", "unknown",
            )  # fmt: skip
            out["status_class"] = pd.arrays.ArrowExtensionArray(klass)  # by position, whatever the index
            out["loaded_at"] = constant(loaded_at, rows, pa.timestamp("us", tz="UTC"))
            out["dag_run_id"] = constant(run_id, rows, pa.string())
            yield out

    def _load_compact(
        self, frames: Iterator[pd.DataFrame], request_ids: list[str], report_type: str, run_id: str | None
    ) -> LoadResult | None:
        """PostgreSQL's compact layout (a new table, or a view this provider made); None for a table."""
        mode = validate_load_mode(self.load_mode)
        if not CompactNames.fits(self.table):
            self.log.info(
                "Wide layout for %s: the compact layout's names need a table name of at most %d characters",
                self.table, CompactNames.MAX_NAME,
            )  # fmt: skip
            return None
        session = self.open_session()
        try:
            if CompactBatchStatusLoader.layout(session, self.table) == "wide":
                return None
            first, frames = peek(frames)
            extra = [
                c for c in (first.columns if first is not None else ()) if c not in BATCH_STATUS_FRAME_COLUMNS
            ]
            if extra:
                raise TableLayoutError(
                    f"transform added column(s) {', '.join(extra)}: the compact PostgreSQL layout of {self.table!r} "
                    "has none beyond the report's. Load into a table you create with them (wide layout)."
                )
            loader = CompactBatchStatusLoader(session, self.table, logger=self.log)
            loader.ensure(create=self.create_table, unique_key=mode == "upsert")
            return loader.load(
                frames,
                report_type,
                request_ids=request_ids,
                mode=mode,
                loaded_at=self.now(),
                dag_run_id=run_id,
            )
        finally:
            close_source(frames)
            session.close()

    def openlineage_inputs(self) -> list[tuple[str, str]]:
        """The batch-status report of the type loaded (``batch-status/notify``...): request ids are not named."""
        return [self.gateway_dataset(f"batch-status/{str(self.report_type).strip().lower()}")]

    def act(self, context: Context) -> dict[str, Any]:
        request_ids = as_list(self.request_ids)
        if not request_ids:
            raise AirflowFailException("No request id to load: request_ids rendered empty.")
        report_type = str(self.report_type).strip().lower()
        if report_type not in BATCH_STATUS_COLUMNS:
            raise AirflowFailException(
                f"report_type must be one of {', '.join(BATCH_STATUS_COLUMNS)}; got {self.report_type!r}."
            )
        self.log.info(
            "Loading the %s batch-status reports of %s, %d fetched at a time",
            report_type, describe_request_ids(request_ids), min(self.concurrency, len(request_ids)),
        )  # fmt: skip
        run_id = self.run_id(context)
        result = None
        if self.dialect.name == "postgres":
            result = self._load_compact(
                self._frames(request_ids, report_type), request_ids, report_type, run_id
            )
        if result is None:
            frames = self._wide(self._frames(request_ids, report_type), report_type, self.now(), run_id)
            scope = {"request_id": request_ids, "report_type": report_type}
            result = self._load(frames, scope)
        return {**result.as_dict(), "requests": len(request_ids), "report_type": report_type}
