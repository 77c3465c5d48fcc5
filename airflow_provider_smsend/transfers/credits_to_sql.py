"""SmSendCreditsToSqlOperator: the credit-get balance of clients -> a dated snapshot table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.reports import credit_snapshot_frame
from airflow_provider_smsend.sql.layouts import CREDIT_SNAPSHOT_TABLE
from airflow_provider_smsend.sql.loader import constant
from airflow_provider_smsend.transfers.base import (
    BaseSmSendToSqlOperator,
    as_date,
    as_list,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

ROME = ZoneInfo("Europe/Rome")


class SmSendCreditsToSqlOperator(BaseSmSendToSqlOperator):
    """Snapshot the available credit of reseller clients into a dated balance table.

    Asks credit-get (reseller credentials) for each client id - given as ``u_ids``, or every
    distinct id found in ``u_id_table.u_id_column`` of the target database - and writes one row
    per client and ``snapshot_date``: ``snapshot_date`` (DATE), ``u_id`` (BIGINT), ``credit``
    (``NUMERIC(18,4)``, exact), ``loaded_at`` (UTC), ``dag_run_id``. Every balance is fetched
    before the write, so a failing call writes nothing. With ``load_mode="replace"`` (default) the
    rows of the same date and clients are replaced; upsert key: ``(snapshot_date, u_id)``.

    Returns (XCom) ``{"rows", "table", "load_mode", "snapshot_date", "clients", "total_credit",
    "deleted", "method", "seconds"}`` (``total_credit`` as text, exact). ``clients`` and
    ``total_credit`` are what credit-get gave for every client asked, before any ``transform``
    (the gateway's side of a reconciliation); ``rows`` is what was loaded.

    :param u_ids: client ids: a list, or a comma separated string (templated).
    :param u_id_table: instead of ``u_ids``: a table of the target database holding client ids
        (templated).
    :param u_id_column: the column of ``u_id_table`` with the client ids (templated; default ``u_id``).
    :param snapshot_date: the snapshot's date, ``YYYY-MM-DD`` (templated); default: the run's
        logical date, else today, as a Europe/Rome day.
    :param table: the target table (default ``smsend_credit_snapshot``).
    :param conn_id: the SQL connection id (any common-sql database).

    Other parameters: see :class:`~airflow_provider_smsend.transfers.base.BaseSmSendToSqlOperator`.

    Example::

        from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator

        snapshot = SmSendCreditsToSqlOperator(
            task_id="snapshot_client_credit",
            u_id_table="crm.smsend_clients",
            u_id_column="smsend_u_id",
            snapshot_date="{{ dag_run.run_after | ds }}",
            table="smsend_credit_snapshot",
            conn_id="warehouse",
        )
    """

    template_fields: Sequence[str] = (
        *BaseSmSendToSqlOperator.template_fields, "u_ids", "u_id_table", "u_id_column", "snapshot_date",
    )  # fmt: skip
    spec = CREDIT_SNAPSHOT_TABLE

    def __init__(
        self,
        *,
        u_ids: str | Sequence[int | str] | None = None,
        u_id_table: str | None = None,
        u_id_column: str = "u_id",
        snapshot_date: str | dt.date | None = None,
        table: str = "smsend_credit_snapshot",
        conn_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, conn_id=conn_id, **kwargs)
        if u_ids is None and not u_id_table:
            raise ValueError(
                "Give u_ids (client ids) or u_id_table (a table of client ids in the target database)."
            )
        if u_ids is not None and u_id_table:
            raise ValueError("Give either u_ids or u_id_table, not both.")
        self.u_ids = u_ids
        self.u_id_table = u_id_table
        self.u_id_column = u_id_column
        self.snapshot_date = snapshot_date

    def _client_ids(self) -> list[int]:
        if self.u_id_table:
            q = self.dialect.quote
            sql = (
                f"SELECT DISTINCT {q(self.u_id_column)} FROM {q(self.u_id_table)} "
                f"WHERE {q(self.u_id_column)} IS NOT NULL"
            )
            raw: list[str] = [str(r[0]).strip() for r in self.db_hook.get_records(sql)]
            self.log.info(
                "Found %d distinct client id(s) in %s.%s", len(raw), self.u_id_table, self.u_id_column
            )
        else:
            raw = as_list(self.u_ids)
        ids: list[int] = []
        for value in raw:
            text = value[:-2] if value.endswith(".0") else value  # ids read back from a float column
            if not text.isdigit() or int(text) < 1:
                raise AirflowFailException(f"Client id {value!r} is not a positive integer.")
            ids.append(int(text))
        return sorted(set(ids))

    def _snapshot_date(self, context: Context) -> dt.date:
        given = as_date(self.snapshot_date, what="snapshot_date")
        if given:
            return given
        logical = context.get("logical_date")
        moment = logical if isinstance(logical, dt.datetime) else dt.datetime.now(dt.UTC)
        return moment.astimezone(ROME).date()

    def openlineage_inputs(self) -> list[tuple[str, str]]:
        """The clients' balances (``credit-get``), and the table of client ids when one is read."""
        inputs = [self.gateway_dataset("credit-get")]
        if self.u_id_table:
            inputs.append(self.sql_dataset(self.conn_id, self.u_id_table))
        return inputs

    def act(self, context: Context) -> dict[str, Any]:
        ids = self._client_ids()
        snapshot_date = self._snapshot_date(context)
        if not ids:
            self.log.warning("No client id to snapshot: nothing loaded into %s", self.table)
            return {"rows": 0, "table": self.table, "load_mode": self.load_mode, "snapshot_date": snapshot_date.isoformat(),
                    "clients": 0, "total_credit": "0"}  # fmt: skip
        client = self.client
        balances: list[tuple[int, Decimal]] = []
        self.log.info("Asking credit-get for %d client(s), snapshot of %s", len(ids), snapshot_date)
        try:
            for u_id in ids:
                balances.append((u_id, client.credit_get(u_id)))
        except SmSendError:
            self.log.error(
                "credit-get failed for client %s after %d balance(s): nothing written", u_id, len(balances)
            )
            raise
        import pyarrow as pa

        frame = credit_snapshot_frame(balances, snapshot_date=snapshot_date)
        frame["loaded_at"] = constant(self.now(), len(frame), pa.timestamp("us", tz="UTC"))
        frame["dag_run_id"] = constant(self.run_id(context), len(frame), pa.string())
        frames = self.transformed([frame], ("snapshot_date", "u_id", "credit"))
        result = self._load(frames, {"snapshot_date": snapshot_date, "u_id": ids})
        total = sum((credit for _, credit in balances), Decimal(0))
        return {
            **result.as_dict(),
            "snapshot_date": snapshot_date.isoformat(),
            "clients": len(ids),
            "total_credit": str(total),
        }
