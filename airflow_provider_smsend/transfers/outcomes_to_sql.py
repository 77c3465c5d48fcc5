"""SmSendOutcomesToSqlOperator: a send's per-recipient outcomes (the ledger) -> a warehouse table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.ledger import DEFAULT_TABLE, outcomes_frame
from airflow_provider_smsend.operators.base import DEFAULT_LEDGER_CONN_ID, job_key
from airflow_provider_smsend.sql.layouts import OUTCOMES_TABLE
from airflow_provider_smsend.sql.loader import constant
from airflow_provider_smsend.transfers.base import BaseSmSendToSqlOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class SmSendOutcomesToSqlOperator(BaseSmSendToSqlOperator):
    """Load the per-recipient outcomes of a send from the send ledger into a warehouse table.

    The SMS operator keeps one outcome per recipient in its ledger (not in XCom); this transfer
    copies a job's outcomes into any SQL database, one row per recipient, so that billing and
    campaign reports can join them with the delivery report (on ``request_id``). Columns:
    ``job_key``, ``recipient`` (masked: ``+39333****567``, unless ``unmask_recipients=True``),
    ``recipient_key`` (16 hex digits of SHA-256 of the number: stable, the upsert key with
    ``job_key``), ``status`` (accepted, rejected, unknown, sending, suppressed, capped), ``cost``
    (``NUMERIC(18,4)``), ``error_code``, ``request_id``, ``try_number``, ``updated_at`` (UTC), ``loaded_at``,
    ``dag_run_id``. ``load_mode="replace"`` (default) replaces the job's rows.

    Returns (XCom) ``{"rows", "table", "load_mode", "deleted", "method", "seconds", "ledger_key",
    "totals"}`` (``totals``: rows by status).

    :param send_task_id: the task id of the SMS operator whose outcomes to load, in this DAG run:
        its default ledger key is built from it (``dag_id/send_task_id/run_id/send_map_index``).
    :param send_map_index: the map index of that task (``-1``: not mapped).
    :param ledger_key: instead of ``send_task_id``: the ledger key the send used (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='send')['outcomes']['ledger_key'] }}"``.
    :param ledger_conn_id: the ledger's SQL connection (the send's ``ledger_conn_id``).
    :param ledger_table: the ledger's table (the send's ``ledger_table``).
    :param unmask_recipients: write full numbers (personal data: an explicit opt-in).
    :param table: the target table (default ``smsend_outcomes``).
    :param conn_id: the SQL connection id of the warehouse (any common-sql database).

    Other parameters: see :class:`~airflow_provider_smsend.transfers.base.BaseSmSendToSqlOperator`.

    Example::

        from airflow_provider_smsend.transfers.outcomes_to_sql import SmSendOutcomesToSqlOperator

        load_outcomes = SmSendOutcomesToSqlOperator(
            task_id="load_outcomes", send_task_id="send_campaign", conn_id="warehouse"
        )
        send_campaign >> load_outcomes
    """

    template_fields: Sequence[str] = (
        *BaseSmSendToSqlOperator.template_fields, "send_task_id", "ledger_key", "ledger_conn_id", "ledger_table",
    )  # fmt: skip
    spec = OUTCOMES_TABLE

    def __init__(
        self,
        *,
        send_task_id: str | None = None,
        send_map_index: int = -1,
        ledger_key: str | None = None,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        ledger_table: str = DEFAULT_TABLE,
        unmask_recipients: bool = False,
        table: str = "smsend_outcomes",
        conn_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, conn_id=conn_id, **kwargs)
        if (send_task_id is None) == (ledger_key is None):
            raise ValueError("Give send_task_id (the SMS task of this DAG run) or ledger_key, not both.")
        self.send_task_id = send_task_id
        self.send_map_index = send_map_index
        self.ledger_key = ledger_key
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table
        self.unmask_recipients = unmask_recipients

    def _key(self, context: Context) -> str:
        if self.ledger_key is not None:
            return job_key(context, self.ledger_key)
        ti = context["ti"]
        return f"{ti.dag_id}/{self.send_task_id}/{ti.run_id}/{self.send_map_index}"

    def openlineage_inputs(self) -> list[tuple[str, str]]:
        """The send ledger's table on ``ledger_conn_id`` (none for a memory ledger)."""
        if self.ledger_conn_id is None:
            return []
        return [self.sql_dataset(self.ledger_conn_id, self.ledger_table)]

    def act(self, context: Context) -> dict[str, Any]:
        import pyarrow as pa

        key = self._key(context)
        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            entries = list(ledger.load(key).values())
        self.log.info("Loading %d outcome(s) of ledger job %r into %s", len(entries), key, self.table)
        frame = outcomes_frame(entries, key=self.hook.pseudonym_key, masked=not self.unmask_recipients)
        frame.insert(0, "job_key", constant(key, len(frame), pa.string()))
        frame["loaded_at"] = constant(self.now(), len(frame), pa.timestamp("us", tz="UTC"))
        frame["dag_run_id"] = constant(self.run_id(context), len(frame), pa.string())
        frames = self.transformed([frame], ("job_key", "recipient_key", "status"))
        result = self._load(frames, {"job_key": key})
        totals: dict[str, int] = {}
        for entry in entries:
            totals[entry.state] = totals.get(entry.state, 0) + 1
        return {**result.as_dict(), "ledger_key": key, "totals": totals}
