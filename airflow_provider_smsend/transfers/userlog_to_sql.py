"""SmSendUserlogToSqlOperator: userlog-get reports (credits, recv_add, recv_del) -> a SQL table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.reports import USERLOG_COLUMNS
from airflow_provider_smsend.sql.layouts import USERLOG_TABLE
from airflow_provider_smsend.sql.loader import constant
from airflow_provider_smsend.transfers.base import BaseSmSendToSqlOperator, as_date

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd
    from airflow.sdk import Context


class SmSendUserlogToSqlOperator(BaseSmSendToSqlOperator):
    """Load a back-office userlog-get report (reseller credentials) into a SQL table.

    The TSV report is streamed and parsed by header; dates (Europe/Rome on the gateway) are
    stored in UTC, credits as exact ``NUMERIC(18,4)``. With ``load_mode="replace"`` (default)
    the rows of a previous load with the same type, date range and client filter are deleted
    first, in the same transaction, so re-running a DAG run leaves the same rows. When windows of
    different runs overlap, use ``load_mode="upsert"`` (key: ``(report_type, id)``) instead.

    Table columns: ``report_type``, ``date_from``, ``date_to``, ``filter_u_id`` (the load's
    parameters), ``id``, ``date`` (UTC), ``u_id``, ``username``, ``bill_id``, ``credit``
    (credits), ``dest``, ``sharecode`` (recv_add/recv_del), ``loaded_at`` (UTC), ``dag_run_id``.
    Report columns beyond the expected ones are not stored (a ``transform`` sees them, and may
    keep them for a table you created with those columns).

    Returns (XCom) ``{"rows", "table", "load_mode", "report_type", "date_from", "date_to",
    "u_id", "deleted", "method", "seconds"}``.

    :param log_type: ``credits`` (default), ``recv_add`` or ``recv_del`` (templated).
    :param u_id: only this client's operations (templated; optional).
    :param date_from: first day, ``YYYY-MM-DD`` (templated; optional).
    :param date_to: last day, ``YYYY-MM-DD`` (templated; optional).
    :param table: the target table (default ``smsend_userlog``).
    :param conn_id: the SQL connection id (any common-sql database).

    Other parameters: see :class:`~airflow_provider_smsend.transfers.base.BaseSmSendToSqlOperator`.

    Example::

        from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

        load_credits = SmSendUserlogToSqlOperator(
            task_id="load_credit_log",
            log_type="credits",
            date_from="{{ macros.ds_add(dag_run.run_after | ds, -1) }}",
            date_to="{{ macros.ds_add(dag_run.run_after | ds, -1) }}",
            table="smsend_credit_log",
            conn_id="warehouse",
        )
    """

    template_fields: Sequence[str] = (
        *BaseSmSendToSqlOperator.template_fields, "log_type", "u_id", "date_from", "date_to",
    )  # fmt: skip
    spec = USERLOG_TABLE

    def __init__(
        self,
        *,
        log_type: str = "credits",
        u_id: int | str | None = None,
        date_from: str | dt.date | None = None,
        date_to: str | dt.date | None = None,
        table: str = "smsend_userlog",
        conn_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, conn_id=conn_id, **kwargs)
        self.log_type = log_type
        self.u_id = u_id
        self.date_from = date_from
        self.date_to = date_to

    def _frames(
        self, log_type: str, u_id: int | None, date_from: dt.date | None, date_to: dt.date | None,
        loaded_at: dt.datetime, run_id: str | None,
    ) -> Iterator[pd.DataFrame]:  # fmt: skip
        """The report's frames (transformed) with the load's columns added."""
        import pyarrow as pa

        client = self.client
        with client.stream_userlog(log_type, u_id=u_id, date_from=date_from, date_to=date_to) as frames:
            for frame in self.transformed(frames, USERLOG_COLUMNS[log_type][:4]):
                rows = len(frame)
                out = frame.copy()
                for name, value, kind in (
                    ("report_type", log_type, pa.string()), ("date_from", date_from, pa.date32()),
                    ("date_to", date_to, pa.date32()), ("filter_u_id", u_id, pa.int64()),
                    ("loaded_at", loaded_at, pa.timestamp("us", tz="UTC")), ("dag_run_id", run_id, pa.string()),
                ):  # fmt: skip
                    out[name] = constant(value, rows, kind)
                for name in ("bill_id", "credit", "dest", "sharecode"):
                    if name not in out.columns:
                        out[name] = constant(None, rows, pa.decimal128(18, 4) if name == "credit" else
                                             pa.int64() if name == "bill_id" else pa.string())  # fmt: skip
                yield out

    def openlineage_inputs(self) -> list[tuple[str, str]]:
        """The back-office operation log of the type loaded (``userlog-get/credits``...)."""
        return [self.gateway_dataset(f"userlog-get/{str(self.log_type).strip().lower()}")]

    def act(self, context: Context) -> dict[str, Any]:
        log_type = str(self.log_type).strip().lower()
        if log_type not in USERLOG_COLUMNS:
            raise AirflowFailException(
                f"log_type must be one of {', '.join(USERLOG_COLUMNS)}; got {self.log_type!r}."
            )
        u_id = _optional_id(self.u_id)
        date_from = as_date(self.date_from, what="date_from")
        date_to = as_date(self.date_to, what="date_to")
        if date_from and date_to and date_from > date_to:
            raise AirflowFailException(f"date_from {date_from} is after date_to {date_to}.")
        self.log.info(
            "Loading the %s userlog from %s to %s (client %s)", log_type, date_from, date_to, u_id or "all"
        )
        frames = self._frames(log_type, u_id, date_from, date_to, self.now(), self.run_id(context))
        scope = {"report_type": log_type, "date_from": date_from, "date_to": date_to, "filter_u_id": u_id}
        result = self._load(frames, scope)
        return {
            **result.as_dict(),
            "report_type": log_type,
            "date_from": date_from.isoformat() if date_from else None,
            "date_to": date_to.isoformat() if date_to else None,
            "u_id": u_id,
        }


def _optional_id(value: object) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise AirflowFailException(f"u_id must be a positive client id, got {value!r}.")
    return int(text)
